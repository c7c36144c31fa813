// Package vertex translates between OpenAI chat completions and embeddings
// (Weir's canonical shape) and Google Cloud Vertex AI, for two model
// families on one backend:
//
//   - Gemini models (publisher google): POST
//     /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent,
//     or :streamGenerateContent?alt=sse for streams. Bodies, responses,
//     streams and errors are those of the Gemini API, translated by
//     extproc/schema/gemini (see its documentation for the mapping).
//   - Anthropic models (publisher anthropic; upstream model names starting
//     with "claude", such as claude-sonnet-4-5@20250929): :rawPredict, or
//     :streamRawPredict for streams, with Anthropic's Messages body without
//     "model" (the path names it) and with "anthropic_version":
//     "vertex-2023-10-16"; "stream": true stays in the body of streams.
//     Replies and SSE streams are Anthropic's, translated by
//     extproc/schema/messages.
//   - Anthropic's Messages API in its own format (provider.EndpointMessages,
//     native passthrough; [provider.Native] serves it for the Anthropic
//     models above): :rawPredict or :streamRawPredict with the client's
//     body minus "model", plus "anthropic_version": "vertex-2023-10-16"
//     unless the client set one; "stream" stays, and everything else
//     passes untouched. The client's anthropic-beta header is sent as the
//     anthropic-beta header, which is how Anthropic's Vertex SDKs send
//     betas to rawPredict. "container" and file_id sources are refused as
//     for Anthropic. The reply and the SSE events come back as Anthropic
//     sends them, with the client's model name and exact usage
//     (extproc/schema/messages).
//   - Embeddings (publisher google, for gemini-embedding-001,
//     text-embedding-005, text-multilingual-embedding-002...): :predict
//     with {"instances":[{"content":"..."}...],"parameters":
//     {"outputDimensionality":N}} (dimensions → outputDimensionality); the
//     reply's predictions[i].embeddings.values become data[i].embedding,
//     and the sum of predictions[i].embeddings.statistics.token_count is
//     prompt_tokens. Token-array inputs and encoding_format base64 are
//     ErrUnsupported. gemini-embedding-001 takes one instance per request:
//     Vertex answers 400 to an array input for it.
//
// The family of a reply is recognised by its shape, since a Translator
// keeps no per-request state: a body with "type": "message" (or an error
// body with "type": "error") is Anthropic's, anything else Gemini's; a
// stream is Anthropic's when its first event has an "event:" line or a
// data object with a "type" string.
//
// Bodies are read with gjson and written by appending to one buffer; no
// body is unmarshalled into structs. Errors that Vertex itself sends
// (authentication, quota, unknown model) are Google's {"error":{"code",
// "message","status"}} for both families and are mapped as for Gemini.
//
// Backend options (config.Backend.Options):
//
//   - project: the Google Cloud project id. Default: the service
//     account's project_id.
//   - location: the region, such as us-central1 or us-east5, or "global".
//     Required. When base_url is empty it is
//     https://{location}-aiplatform.googleapis.com (https://aiplatform.googleapis.com
//     for global); see config.VertexBaseURL.
//   - api_version: the path's version segment, default "v1".
//
// Authentication: the backend credential (file, env or value) holds a
// service-account JSON key. Weir signs a JWT with its private key and
// exchanges it at the key's token_uri for an OAuth2 access token with the
// scope https://www.googleapis.com/auth/cloud-platform
// (golang.org/x/oauth2/google.JWTConfigFromJSON, which accepts only
// "type": "service_account" keys). The token is cached per backend by
// extproc/provider/oauthcache and refreshed in the background five minutes
// before it expires; requests are sent with "Authorization: Bearer
// <token>". The cache outlives config reloads while the backend's name and
// key stay the same (extproc/provider/credsource), so a reload costs no
// token fetch. A request that finds no token waits for a fetch under way
// (a new key's first), at most provider.CredentialTimeout; if there is
// none, or it failed, the request fails with a generic 503
// (errs.CredentialError) and the server logs the reason. A credential that is not
// JSON is taken as an access token minted outside Weir (a sidecar, or the
// dev fakes) and sent as is, never refreshed. With no credential no
// Authorization header is sent.
//
// Sources: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference
// (generateContent and streamGenerateContent on Vertex, Bearer auth),
// https://docs.claude.com/en/docs/build-with-claude/claude-on-vertex-ai and
// https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude
// (rawPredict, streamRawPredict, anthropic_version, model ids, regional and
// global endpoints),
// https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
// (predict instances, parameters, predictions and statistics),
// https://cloud.google.com/vertex-ai/docs/reference/rest#service-endpoint
// (endpoints), https://developers.google.com/identity/protocols/oauth2/service-account
// (service-account JWT flow) and https://cloud.google.com/apis/design/errors (errors).
package vertex

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/credsource"
	"github.com/weir-ai/weir/extproc/provider/oauthcache"
)

// AnthropicVersion is the anthropic_version rawPredict bodies carry.
const AnthropicVersion = "vertex-2023-10-16"

// Scope is the OAuth2 scope of the access tokens.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// DefaultAPIVersion is the path's version segment.
const DefaultAPIVersion = "v1"

// cacheOptions lets tests inject the token cache's clock.
var cacheOptions = func(o *oauthcache.Options) {}

// now is the clock for "created" fields; tests replace it.
var now = time.Now

// tokenClient fetches tokens; its timeout bounds one exchange.
var tokenClient = &http.Client{Timeout: 30 * time.Second}

type translator struct {
	// base is "/{version}/projects/{project}/locations/{location}/publishers/".
	base   string
	tokens *oauthcache.Cache // nil: no credential, no Authorization header
	// static is "Bearer <token>" when the credential is an access token
	// minted outside Weir (a sidecar, or the dev fakes) instead of a
	// service-account key; it is sent as is and never refreshed.
	static string
	// owned is set when tokens is the translator's own, not a pooled one.
	owned bool
}

// Translator is the Vertex translator's surface beyond provider.Translator.
type Translator interface {
	provider.Translator
	// Close stops the token refresher of a translator built by [New]
	// (also stopped when it becomes unreachable); a pooled one is the
	// pool's to stop.
	Close()
}

var _ Translator = (*translator)(nil)

// New builds a Vertex AI translator for a backend, with a token cache of
// its own (stopped by [Translator.Close]).
func New(b *config.Backend) (provider.Translator, error) { return NewShared(b, nil) }

// NewShared builds a Vertex AI translator whose token cache comes from
// creds: the running cache when the backend's key is unchanged.
func NewShared(b *config.Backend, creds *credsource.Lease) (provider.Translator, error) {
	if b == nil {
		return nil, errors.New("vertex: no backend")
	}
	var project, location string
	version := DefaultAPIVersion
	keys := make([]string, 0, len(b.Options))
	for k := range b.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := b.Options[k]
		switch k {
		case "project":
			project = v
		case "location":
			location = v
		case "api_version":
			if v == "" {
				return nil, errors.New("vertex: options.api_version must not be empty")
			}
			version = v
		default:
			return nil, fmt.Errorf("vertex: unknown option %q (known: api_version, location, project)", k)
		}
	}
	if location == "" {
		return nil, errors.New("vertex: options.location is required (a region such as us-central1, or global)")
	}
	if location != "global" && config.VertexBaseURL(location) == "" {
		return nil, fmt.Errorf("vertex: options.location %q is not a region name", location)
	}
	t := &translator{}
	var key []byte
	if b.Credential != nil && b.Credential.Key != "" {
		key = []byte(b.Credential.Key.Reveal())
		if project == "" {
			project = gjson.GetBytes(key, "project_id").Str
		}
	}
	if project == "" {
		return nil, errors.New("vertex: options.project is required (or a service-account key with project_id)")
	}
	t.base = "/" + url.PathEscape(version) + "/projects/" + url.PathEscape(project) +
		"/locations/" + url.PathEscape(location) + "/publishers/"
	if key != nil && key[0] != '{' {
		t.static, key = "Bearer "+string(key), nil
	}
	if key != nil {
		fetch, err := ServiceAccountFetcher(key)
		if err != nil {
			return nil, err
		}
		// The key names the token endpoint, the identity and the signing
		// key: it is the whole credential.
		id := credsource.Identity("vertex", string(key))
		t.tokens, err = credsource.Get(creds, credsource.Key{Backend: b.Name, Identity: id}, func() (*oauthcache.Cache, error) {
			o := oauthcache.Options{Name: "vertex backend " + b.Name, Backend: b.Name, Fetch: fetch, Wait: provider.CredentialTimeout}
			cacheOptions(&o)
			return oauthcache.New(o)
		})
		if err != nil {
			return nil, err
		}
		t.owned = creds == nil
	}
	return t, nil
}

// ServiceAccountFetcher returns a fetcher of access tokens for a Google
// service-account JSON key. Every call exchanges a new signed JWT at the
// key's token_uri; oauthcache decides when to call.
func ServiceAccountFetcher(key []byte) (oauthcache.Fetcher, error) {
	if !gjson.ValidBytes(key) || !gjson.ParseBytes(key).IsObject() {
		return nil, errors.New("vertex: the credential must be a service-account JSON key")
	}
	// JWTConfigFromJSON rather than CredentialsFromJSON: it accepts only
	// service-account keys (CredentialsFromJSON follows any credential
	// type, including external accounts that read files and URLs), and its
	// TokenSource can be built fresh per fetch instead of reusing a token
	// the cache has decided to replace.
	cfg, err := google.JWTConfigFromJSON(key, Scope)
	if err != nil {
		return nil, fmt.Errorf("vertex: the credential is not a usable service-account JSON key: %w", err)
	}
	if blk, _ := pem.Decode(cfg.PrivateKey); blk == nil {
		return nil, errors.New("vertex: the service-account key's private_key is not PEM")
	}
	if cfg.Email == "" {
		return nil, errors.New("vertex: the service-account key has no client_email")
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, tokenClient)
		return cfg.TokenSource(ctx).Token()
	}, nil
}

// Close stops the token refresher, unless a credsource pool owns it.
func (t *translator) Close() {
	if t.tokens != nil && t.owned {
		t.tokens.Close()
	}
}

// isAnthropic reports whether an upstream model is one of Anthropic's.
func isAnthropic(model string) bool { return strings.HasPrefix(model, "claude") }
