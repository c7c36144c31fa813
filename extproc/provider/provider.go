// Package provider defines the small interface every provider translator
// implements. Weir's canonical request shape is OpenAI's; each provider
// folder translates from it to its own wire format and back.
//
// Adding a provider means one new folder under extproc/provider and one line
// in extproc/provider/registry.
package provider

import (
	"context"
	"time"

	"github.com/weir-ai/weir/config"
)

// CredentialTimeout bounds how long one request may wait for a provider
// credential: an AWS credential refresh, or an OAuth2 token fetch already
// under way. Far below Envoy's ext_proc message timeout (30 s as Weir
// generates it), so a slow identity provider costs the client a prompt 503
// instead of a hung request. Translators read it when they are built; it
// is a variable so that tests can shorten it.
var CredentialTimeout = 5 * time.Second

// CredentialContext returns ctx (Background if nil) bounded by timeout
// (a translator's copy of [CredentialTimeout]), for a translator about to
// wait for a credential.
func CredentialContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, timeout)
}

// Endpoint is the API operation a request targets.
type Endpoint uint8

const (
	EndpointUnknown Endpoint = iota
	// EndpointChat is POST /v1/chat/completions.
	EndpointChat
	// EndpointEmbeddings is POST /v1/embeddings.
	EndpointEmbeddings
	// EndpointCompletions is the legacy POST /v1/completions.
	EndpointCompletions
	// EndpointResponses is OpenAI's POST /v1/responses, passed through to
	// OpenAI-format backends (OpenAI, Azure) only.
	EndpointResponses
	// EndpointMessages is Anthropic's POST /v1/messages in Anthropic's own
	// wire format, sent to translators that serve it natively ([Native]).
	EndpointMessages
)

// String returns the name used in metadata, metrics and logs.
func (e Endpoint) String() string {
	switch e {
	case EndpointChat:
		return "chat"
	case EndpointEmbeddings:
		return "embeddings"
	case EndpointCompletions:
		return "completions"
	case EndpointResponses:
		return "responses"
	case EndpointMessages:
		return "messages"
	}
	return "unknown"
}

// ParseEndpoint is the inverse of [Endpoint.String].
func ParseEndpoint(s string) Endpoint {
	switch s {
	case "chat":
		return EndpointChat
	case "embeddings":
		return EndpointEmbeddings
	case "completions":
		return EndpointCompletions
	case "responses":
		return EndpointResponses
	case "messages":
		return EndpointMessages
	}
	return EndpointUnknown
}

// Request is one upstream attempt's request, still in OpenAI shape.
type Request struct {
	Endpoint Endpoint
	// Body is the OpenAI-shaped JSON body the client sent. Translators must
	// not modify it in place; they return a new body.
	Body []byte
	// Model is the model name to send upstream (aliases already resolved).
	Model string
	// ClientModel is the "model" field as the client sent it; a translator
	// that passes the body through rewrites it only when it differs.
	ClientModel string
	// Stream reports whether the client asked for a stream.
	Stream bool
	// AnthropicBeta is the client's anthropic-beta header (comma-separated
	// beta names), set only for [EndpointMessages]: each Anthropic-family
	// provider carries it its own way (a header, or Bedrock's body field).
	AnthropicBeta string
	// Ctx is the request's context (the ext_proc stream's), which a
	// translator that may wait for a credential bounds further with
	// [CredentialTimeout]. It rides here rather than as a parameter
	// because only credential waits use it; nil means Background.
	Ctx context.Context
}

// Upstream is what the upstream-level filter applies to the attempt.
type Upstream struct {
	// Path is appended to the backend base URL's path, for example
	// "/chat/completions" (OpenAI base URLs end in /v1) or "/v1/messages".
	Path string
	// Body replaces the request body; nil keeps the client's body.
	Body []byte
	// Headers are set on the upstream request, replacing any existing value.
	// Credentials go here.
	Headers []Header
}

// Header is one header to set.
type Header struct{ Key, Value string }

// Response is a complete (buffered) upstream response.
type Response struct {
	Endpoint Endpoint
	// Status is the upstream HTTP status.
	Status int
	// Body is the upstream body as received.
	Body []byte
	// Model is the model name the client asked for; translated responses
	// report it so clients see the name they used.
	Model string
}

// StreamInfo describes a streamed response being translated.
type StreamInfo struct {
	Endpoint Endpoint
	Model    string
	// IncludeUsage reports whether the client asked for a final usage chunk
	// (stream_options.include_usage). Weir always learns usage; it forwards
	// the usage chunk only if the client asked.
	IncludeUsage bool
	// RequestID seeds ids where a provider's stream has none.
	RequestID string
}

// MaxOutputTokens bounds a request's reply limit (max_tokens and its
// kin) on every ingress. No model writes 16M tokens in one reply, so a
// larger limit can never be used; it is refused with a 400 rather than
// clamped, since the provider would be sent the same number. It also
// keeps every estimate far from int64 overflow.
const MaxOutputTokens = 1 << 24

// Usage is token usage in OpenAI terms.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	// CachedTokens are prompt tokens served from the provider's prompt cache
	// (OpenAI prompt_tokens_details.cached_tokens, Anthropic
	// cache_read_input_tokens).
	CachedTokens int64
	// CacheWriteTokens are prompt tokens written to the cache (Anthropic
	// cache_creation_input_tokens).
	CacheWriteTokens int64
}

// Known reports whether any usage was observed.
func (u Usage) Known() bool { return u.TotalTokens > 0 || u.PromptTokens > 0 || u.CompletionTokens > 0 }

// Translator is one provider's wire format. A Translator is built once per
// backend when the config loads and is used concurrently by many requests,
// so it holds no per-request state; per-stream state lives in [Stream].
type Translator interface {
	// TranslateRequest builds the upstream request for one attempt. Errors
	// wrap an errs sentinel (usually errs.ErrInvalidRequest or
	// errs.ErrUnsupported) and reach the client as a 4xx; a credential
	// Weir cannot get is an *errs.CredentialError, whose reason the server
	// logs and the client never sees. It waits for a credential no longer
	// than req.Ctx and [CredentialTimeout] allow.
	TranslateRequest(req *Request) (*Upstream, error)
	// TranslateResponse converts a complete upstream body to OpenAI shape.
	// For a status >= 400 it converts the provider's error body into an
	// OpenAI error body. It returns the body to send (nil means unchanged)
	// and the usage it found.
	TranslateResponse(resp *Response) ([]byte, Usage, error)
	// NewStream starts translating one text/event-stream response.
	NewStream(info *StreamInfo) Stream
}

// Stream translates one streamed response, chunk by chunk.
type Stream interface {
	// Translate consumes one chunk of the upstream body and appends what the
	// client should receive to dst. Chunks split events arbitrarily. eos is
	// true on the last call, whose chunk may be empty.
	Translate(dst, chunk []byte, eos bool) ([]byte, error)
	// Usage returns the usage observed so far; after a cut stream it is what
	// was seen before the cut.
	Usage() Usage
}

// DefaultForwardHeaders are the client request headers a provider gets
// unless its folder declares its own list: what describes the request
// (the reply's media type) and the client software, and nothing that
// selects an account, a project, a beta feature or an encoding.
var DefaultForwardHeaders = []string{"accept", "user-agent"}

// HeaderTranslator is implemented by translators that map provider response
// headers (for example rate-limit headers) to OpenAI's names.
type HeaderTranslator interface {
	// TranslateResponseHeaders returns provider headers under the names
	// clients know. They are still the provider's: the router passes each
	// only when the backend exposes it, and never over a value Weir set.
	// get returns a response header's value ("" if absent).
	TranslateResponseHeaders(get func(name string) string) []Header
}

// Native is implemented by translators that serve an endpoint in its own
// wire format rather than Weir's canonical OpenAI shape: today the
// Anthropic family (Anthropic, Bedrock InvokeModel, Vertex rawPredict)
// for [EndpointMessages]. The router asks it before choosing native
// passthrough; a translator that answers false (or does not implement
// Native) gets the request translated to OpenAI's shape instead.
//
// For an endpoint it serves, TranslateRequest takes the client's body in
// that format, TranslateResponse returns a body in that format for a
// status below 400 (and, as for every endpoint, an OpenAI error body for
// an error status, which the router reshapes) and NewStream's Stream
// emits that format's events.
type Native interface {
	// Serves reports whether the translator serves endpoint e natively for
	// upstreamModel (the model name sent upstream, aliases resolved).
	Serves(e Endpoint, upstreamModel string) bool
}

// StreamContentTyper is implemented by translators whose streamed
// responses do not use text/event-stream (Amazon Bedrock sends
// application/vnd.amazon.eventstream). The router streams a 2xx response
// whose content type is text/event-stream or one the translator accepts,
// and tells the client text/event-stream, which is what Stream produces.
type StreamContentTyper interface {
	IsStreamContentType(contentType string) bool
}

// Factory builds a backend's translator from its config. The backend's
// credential is already resolved (Credential.Key).
type Factory func(b *config.Backend) (Translator, error)
