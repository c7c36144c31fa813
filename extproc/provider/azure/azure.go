// Package azure is the translator for Azure OpenAI (Azure AI Foundry
// "Azure OpenAI in Foundry Models"). The wire format is OpenAI's, so the
// body work is extproc/schema/openai's, as for OpenAI; this package changes what
// differs:
//
//   - Path: /openai/deployments/{deployment}/{chat/completions|embeddings|
//     completions}?api-version=<version>. The deployment is the model name
//     sent upstream (aliases and provider_model already applied), so a
//     model entry's provider_model names the Azure deployment.
//     With api_version "v1" the path is instead /openai/v1/<operation>
//     (Azure's version-less v1 API, where "model" in the body names the
//     deployment).
//   - Auth: by default the backend credential goes in the api-key header.
//     With options.auth "entra" it is instead the client secret of a
//     Microsoft Entra ID app registration: Weir runs the OAuth2
//     client-credentials flow (golang.org/x/oauth2/clientcredentials) at
//     https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token with
//     scope https://cognitiveservices.azure.com/.default, caches the token
//     per backend (extproc/provider/oauthcache) and refreshes it in the
//     background five minutes before it expires, and sends
//     "Authorization: Bearer <token>". The cache outlives config reloads
//     while the backend's name and Entra settings stay the same
//     (extproc/provider/credsource). A request that finds no token waits
//     for a fetch under way (a new credential's first), at most
//     provider.CredentialTimeout; if there is none, or it failed, the
//     request fails with a generic 503 (errs.CredentialError) and the
//     server logs the reason. The app (service principal) needs a role such as
//     "Cognitive Services OpenAI User" on the resource.
//   - Errors: Azure's error bodies are OpenAI-like but not always
//     OpenAI-shaped ("type": null, numeric "code"s such as "429"). They are
//     rewritten to {"error":{"message","type","param","code"}}, keeping the
//     status. A prompt blocked by the content filter (400, code
//     "content_filter") becomes type invalid_request_error, code
//     content_filter, with the filtered categories named in the message. A
//     completion cut by the filter stays a 200 with finish_reason
//     "content_filter", passed through.
//
// Backend options (config.Backend.Options):
//
//   - api_version: the api-version query parameter. Default
//     [DefaultAPIVersion], the current GA data-plane inference version;
//     "v1" selects the v1 API.
//   - auth: "api_key" (default) or "entra".
//   - tenant_id, client_id: the Entra ID tenant (directory) and
//     application (client) ids; required with auth entra.
//   - token_url: overrides the token endpoint (sovereign clouds, tests).
//   - scope: overrides the token scope [EntraScope].
//
// Any other key is an error, as are the Entra keys without auth entra.
//
// Sources: https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference
// (paths, api-key header, api-version),
// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/api-version-lifecycle
// (v1 API),
// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter
// (content filter errors and finish_reason),
// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/managed-identity
// (Entra ID bearer tokens, scope, roles) and
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
// (client-credentials request and token response).
package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/credsource"
	"github.com/weir-ai/weir/extproc/provider/oauthcache"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// DefaultAPIVersion is the api-version sent when the backend sets none: the
// latest GA version of the data-plane inference API.
const DefaultAPIVersion = "2024-10-21"

// EntraScope is the scope of Entra ID tokens for Azure OpenAI.
const EntraScope = "https://cognitiveservices.azure.com/.default"

// EntraTokenURL is the token endpoint of a tenant.
func EntraTokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// cacheOptions lets tests inject the token cache's clock.
var cacheOptions = func(o *oauthcache.Options) {}

// tokenClient fetches tokens; its timeout bounds one exchange.
var tokenClient = &http.Client{Timeout: 30 * time.Second}

type translator struct {
	apiVersion string
	v1         bool
	key        string
	tokens     *oauthcache.Cache // auth entra
	owned      bool              // tokens is this translator's, not a pool's
}

// Translator is the Azure translator's surface beyond provider.Translator.
type Translator interface {
	provider.Translator
	// Close stops the Entra ID token refresher of a translator built by
	// [New], if any (also stopped when it becomes unreachable); a pooled
	// one is the pool's to stop.
	Close()
}

// Close stops the token refresher, unless a credsource pool owns it.
func (t *translator) Close() {
	if t.tokens != nil && t.owned {
		t.tokens.Close()
	}
}

// New builds an Azure OpenAI translator for a backend, with an Entra ID
// token cache of its own (stopped by [Translator.Close]).
func New(b *config.Backend) (provider.Translator, error) { return NewShared(b, nil) }

// NewShared builds an Azure OpenAI translator whose Entra ID token cache
// comes from creds: the running cache when the Entra settings are
// unchanged.
func NewShared(b *config.Backend, creds *credsource.Lease) (provider.Translator, error) {
	t := &translator{apiVersion: DefaultAPIVersion}
	keys := make([]string, 0, len(b.Options))
	for k := range b.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var auth, tenant, clientID, tokenURL, scope string
	for _, k := range keys {
		v := b.Options[k]
		switch k {
		case "api_version":
			if v == "" {
				return nil, fmt.Errorf("azure: options.api_version must not be empty")
			}
			t.apiVersion = v
		case "auth":
			auth = v
		case "tenant_id":
			tenant = v
		case "client_id":
			clientID = v
		case "token_url":
			tokenURL = v
		case "scope":
			scope = v
		default:
			return nil, fmt.Errorf("azure: unknown option %q (known: api_version, auth, client_id, scope, tenant_id, token_url)", k)
		}
	}
	t.v1 = t.apiVersion == "v1"
	var secret string
	if b.Credential != nil && b.Credential.Key != "" {
		secret = b.Credential.Key.Reveal()
	}
	switch auth {
	case "", "api_key":
		if tenant != "" || clientID != "" || tokenURL != "" || scope != "" {
			return nil, errors.New("azure: options tenant_id, client_id, token_url and scope need auth: entra")
		}
		t.key = secret
	case "entra":
		fetch, err := entraFetcher(tenant, clientID, secret, tokenURL, scope)
		if err != nil {
			return nil, err
		}
		id := credsource.Identity("azure-entra", tenant, clientID, secret, tokenURL, scope)
		t.tokens, err = credsource.Get(creds, credsource.Key{Backend: b.Name, Identity: id}, func() (*oauthcache.Cache, error) {
			o := oauthcache.Options{Name: "azure backend " + b.Name, Backend: b.Name, Fetch: fetch, Wait: provider.CredentialTimeout}
			cacheOptions(&o)
			return oauthcache.New(o)
		})
		if err != nil {
			return nil, err
		}
		t.owned = creds == nil
	default:
		return nil, fmt.Errorf("azure: options.auth %q: want api_key or entra", auth)
	}
	return t, nil
}

var operations = [...]string{
	provider.EndpointChat:        "/chat/completions",
	provider.EndpointEmbeddings:  "/embeddings",
	provider.EndpointCompletions: "/completions",
	provider.EndpointResponses:   "/responses",
}

// TranslateRequest builds the deployment path and sets api-key; the body is
// OpenAI's (model swapped, include_usage asked for).
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	if int(req.Endpoint) >= len(operations) || operations[req.Endpoint] == "" {
		return nil, fmt.Errorf("%w: endpoint %s", errs.ErrUnsupported, req.Endpoint)
	}
	body, err := openai.PassBody(req)
	if err != nil {
		return nil, err
	}
	up := &provider.Upstream{Body: body}
	switch {
	case t.v1:
		up.Path = "/openai/v1" + operations[req.Endpoint]
	case req.Endpoint == provider.EndpointResponses:
		// Responses is not per deployment: the body's model names it.
		// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/responses
		up.Path = "/openai/responses?api-version=" + url.QueryEscape(t.apiVersion)
	default:
		if req.Model == "" {
			return nil, fmt.Errorf("%w: model is required (it names the Azure deployment)", errs.ErrInvalidRequest)
		}
		up.Path = "/openai/deployments/" + url.PathEscape(req.Model) + operations[req.Endpoint] +
			"?api-version=" + url.QueryEscape(t.apiVersion)
	}
	switch {
	case t.tokens != nil:
		h, err := t.tokens.Header(req.Ctx)
		if err != nil {
			return nil, err
		}
		up.Headers = append(up.Headers, provider.Header{Key: "authorization", Value: h})
	case t.key != "":
		up.Headers = append(up.Headers, provider.Header{Key: "api-key", Value: t.key})
	}
	return up, nil
}

// entraFetcher returns a fetcher of client-credentials tokens. Every call
// asks the token endpoint; oauthcache decides when to call.
func entraFetcher(tenant, clientID, secret, tokenURL, scope string) (oauthcache.Fetcher, error) {
	if clientID == "" {
		return nil, errors.New("azure: auth entra needs options.client_id")
	}
	if secret == "" {
		return nil, errors.New("azure: auth entra needs the client secret as the credential")
	}
	if tokenURL == "" {
		if tenant == "" {
			return nil, errors.New("azure: auth entra needs options.tenant_id")
		}
		tokenURL = EntraTokenURL(tenant)
	} else if u, err := url.Parse(tokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("azure: options.token_url %q is not an http(s) URL", tokenURL)
	}
	if scope == "" {
		scope = EntraScope
	}
	cfg := &clientcredentials.Config{
		ClientID: clientID, ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{scope},
		// The secret goes in the form body, as Microsoft's documentation
		// shows; AutoDetect would try (and fail) basic auth first.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, tokenClient))
	}, nil
}

// TranslateResponse normalises error bodies and otherwise reads usage as
// from OpenAI.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	if resp.Status >= 400 {
		return ErrorBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	return openai.TranslateResponse(resp)
}

// NewStream is the openai stream: Azure streams are OpenAI's, plus chunks
// with "choices": [] carrying prompt_filter_results, which pass through.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	return openai.NewStream(info)
}

var _ Translator = (*translator)(nil)
