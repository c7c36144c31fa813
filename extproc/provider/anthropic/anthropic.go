// Package anthropic is the translator for Anthropic's Messages API (POST
// /v1/messages): the x-api-key credential, the anthropic-version header and
// the rate-limit headers. The bodies, OpenAI chat completions to Messages
// and back, are extproc/schema/messages, shared with the translators that
// carry the same format (Bedrock InvokeModel, Vertex rawPredict).
//
// Native passthrough (provider.EndpointMessages; the translator implements
// provider.Native and serves it for every model): a client that speaks the
// Messages API gets Anthropic's own format both ways, with nothing lost.
//
//   - Request: the client's body goes to /v1/messages as it came. Only
//     "model" changes, to the upstream name, when the route resolved an
//     alias (the rest is spliced around it byte for byte); cache_control,
//     thinking, top_k, citations, tools including server tools, metadata
//     and service_tier pass untouched. The client's anthropic-beta header
//     is sent as anthropic-beta. A "container", or a content block whose
//     source is an uploaded file (file_id), is refused (400,
//     messages.stored_state): both name state in the provider account
//     that every key of the gateway shares.
//   - Response: Anthropic's message, with "model" set back to the client's
//     name when it differs. Usage is exact: prompt tokens are the sum of
//     input_tokens, cache_read_input_tokens and cache_creation_input_tokens,
//     with the cache reads and writes kept apart. Anthropic reports no separate
//     thinking-token count: thinking is part of output_tokens. Error
//     statuses are converted as for chat; the router reshapes them.
//   - Stream: the SSE events pass through byte for byte, split wherever
//     the chunks fall, except message_start's message.model; usage comes
//     from message_start and message_delta. A stream that ends without
//     message_stop (or an error event, which passes as it is) is an error
//     wrapping errs.ErrUpstreamBadReply, for the router to end in-band.
//
// The format-level code is extproc/schema/messages (native*.go), shared
// with Bedrock and Vertex.
package anthropic

import (
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
)

// Version is the anthropic-version header sent upstream.
const Version = "2023-06-01"

// now is the clock for "created" fields and rate-limit resets; tests
// replace it.
var now = time.Now

type translator struct {
	headers []provider.Header
}

// New builds an Anthropic translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	t := &translator{}
	if b != nil && b.Credential != nil && b.Credential.Key != "" {
		t.headers = append(t.headers, provider.Header{Key: "x-api-key", Value: b.Credential.Key.Reveal()})
	}
	t.headers = append(t.headers,
		provider.Header{Key: "anthropic-version", Value: Version},
		provider.Header{Key: "content-type", Value: "application/json"},
	)
	t.headers = t.headers[:len(t.headers):len(t.headers)]
	return t, nil
}

var (
	_ provider.Translator       = (*translator)(nil)
	_ provider.HeaderTranslator = (*translator)(nil)
)
