// Package anthropic translates between OpenAI chat completions (Weir's
// canonical shape) and Anthropic's Messages API (POST /v1/messages).
//
// Bodies are read with gjson and written by appending to one buffer; no
// request or response is unmarshalled into structs. Inputs, from clients or
// from the upstream, never cause a panic: malformed requests become errors
// wrapping errs.ErrInvalidRequest (or errs.ErrUnsupported for features
// Anthropic lacks), malformed replies errors wrapping errs.ErrUpstreamBadReply.
//
// Choices where the two APIs do not line up:
//
//   - temperature: OpenAI accepts 0..2, Anthropic 0..1. Values above 1 are
//     clamped to 1 (and below 0 to 0) rather than scaled, so the common
//     0..1 values mean the same on both sides.
//   - max_tokens: required by Anthropic; max_completion_tokens wins over
//     max_tokens, and 4096 is sent when the client gave neither.
//   - Content parts: text, image_url (base64 data: URLs and http(s) URLs),
//     file parts holding a base64 PDF (as a document block) and assistant
//     refusal parts (as text) are translated; audio and file ids are
//     ErrUnsupported. name fields on messages are dropped.
//   - Unknown or OpenAI-only fields (response_format, logprobs, seed,
//     frequency/presence penalties, reasoning_effort, stream_options...) are
//     dropped, not forwarded. Empty text parts and empty stop sequences are
//     dropped too, as Anthropic rejects them.
//   - id: a response keeps Anthropic's message id as is ("msg_..."), so it
//     can be matched with Anthropic's logs; a stream with no message_start id
//     uses "chatcmpl-" + the request id.
//   - Thinking: thinking text is returned in a "reasoning_content" field (the
//     convention of DeepSeek, vLLM and others), both in responses and in
//     stream deltas; redacted thinking and signatures are dropped.
//   - finish_reason: end_turn, stop_sequence and pause_turn map to "stop",
//     max_tokens to "length", tool_use to "tool_calls", refusal to
//     "content_filter"; anything unknown to "stop".
//   - A stream cut before it completed (no message_stop and no finish reason
//     seen) ends with an OpenAI error event, then "data: [DONE]": OpenAI SDKs
//     raise an APIError on it, so the client ends cleanly yet does not take a
//     truncated answer for a complete one. A stream that lost only its
//     message_stop after the finish reason was sent ends normally.
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

// DefaultMaxTokens is sent when the client sets no token limit.
const DefaultMaxTokens = 4096

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
