// Package messages is Anthropic's Messages API wire format (POST
// /v1/messages) as Weir speaks it: an OpenAI chat completion request
// becomes a Messages body, and a Messages response, error or event stream
// becomes OpenAI's. It is shared by every translator that carries the
// format: Anthropic itself, Amazon Bedrock's InvokeModel and Vertex AI's
// rawPredict. Paths, credentials and headers stay with those translators;
// this package knows only bodies, so it imports no translator.
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
//     max_tokens, and [DefaultMaxTokens] is sent when the client gave
//     neither.
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
// The clock is the caller's: responses and streams take their "created"
// time as an argument, so the package holds no state.
package messages
