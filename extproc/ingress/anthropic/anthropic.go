// Package anthropic is Weir's Anthropic Messages ingress: it lets clients
// of Anthropic's Messages API (the official @anthropic-ai/sdk, for one) call
// POST /v1/messages and POST /v1/messages/count_tokens on Weir, whatever the
// backend.
//
// The package is pure translation between the Messages API and Weir's
// canonical shape, OpenAI chat completions:
//
//	client ──Messages──▶ Request ──OpenAI──▶ backend translator ──▶ provider
//	client ◀──Messages── Response/Stream ◀──OpenAI── backend translator ◀──
//
// It serves only the backends that do not speak Messages. A backend whose
// translator serves Messages natively (provider.Native: Anthropic, Bedrock
// InvokeModel with a Claude model, Vertex rawPredict) gets the client's
// body as it is, chosen by the pipeline's Ingress stage, and none of this
// package's translation runs; its errors are still reshaped here
// ([Adapter.ErrorBody]). Every other backend goes through the OpenAI shape
// using this package and the backend's provider translator.
//
// Bodies are read with gjson and written by appending to one buffer; no
// request or response is unmarshalled into structs. Inputs never cause a
// panic: malformed requests become errors wrapping errs.ErrInvalidRequest
// (or errs.ErrUnsupported for Messages features the OpenAI shape cannot
// carry), malformed upstream replies errors wrapping errs.ErrUpstreamBadReply.
//
// # Request mapping (Messages → OpenAI)
//
//   - system (string or text blocks) becomes the first message, role
//     "system": a string stays a string, blocks become text parts.
//   - User content: text → text part; image base64 → image_url with a
//     data: URL, image url → image_url with the URL; document with a base64
//     PDF → a file part with a data: URL, with a plain-text source → a text
//     part. A string content stays a string.
//   - tool_result blocks become one "tool" message each, in order; user
//     blocks between them become user messages at their place, so order is
//     preserved. is_error: true is noted in the content itself, as an
//     "Error: " prefix on a string or a leading "Error:" text part, because
//     OpenAI tool messages have no error flag. Tool results may hold text
//     and images; images are passed as image_url parts (not every backend
//     accepts them in tool messages).
//   - Assistant content: text blocks become the content (a string for one
//     block, text parts for several), tool_use blocks become tool_calls with
//     the input as compact JSON arguments. OpenAI puts content before
//     tool_calls, so text written after a tool_use moves before it.
//     thinking and redacted_thinking blocks are dropped: their signatures
//     mean nothing to another provider.
//   - tools: custom tools (no type, or "custom") become function tools
//     (name, description, input_schema → parameters). Anthropic's server
//     and client tools with a versioned type (web_search_…, bash_…) are
//     errs.ErrUnsupported.
//   - tool_choice: auto → "auto", any → "required", tool → a named
//     function, none → "none"; disable_parallel_tool_use: true →
//     parallel_tool_calls: false.
//   - max_tokens → max_completion_tokens: OpenAI's reasoning models reject
//     max_tokens, and every Weir backend translator reads
//     max_completion_tokens first.
//   - stop_sequences → stop; temperature and top_p are copied; top_k is
//     validated and dropped (OpenAI has no equivalent); metadata.user_id →
//     user.
//   - stream: true → stream: true and stream_options.include_usage: true,
//     so usage is always known.
//   - Dropped: cache_control and citations on blocks, thinking, service_tier.
//     Unsupported (errs.ErrUnsupported): container, mcp_servers,
//     context_management, image and document file ids, search results and
//     server tool blocks. Any other top-level field is rejected with
//     errs.ErrInvalidRequest, as Anthropic's API itself rejects unknown
//     fields.
//
// # Response mapping (OpenAI → Messages)
//
//   - id: "chatcmpl-X" becomes "msg_X"; an id already starting "msg_" is
//     kept; no id gives "msg_" + the request id.
//   - model is the name the client sent.
//   - content: a text block for the text (or the refusal, when there is no
//     text), then a tool_use block per tool call. Arguments that are not a
//     JSON object (truncated or invalid JSON) become an empty input {}:
//     Anthropic's input must be an object, and a client that validates
//     input against the schema then reports the call as it would any
//     incomplete one.
//   - stop_reason: stop → end_turn, length → max_tokens, tool_calls (and
//     the legacy function_call) → tool_use, content_filter → refusal.
//     OpenAI does not say whether a stop sequence matched, so stop_sequence
//     is never reported and is always null. A reply that carries tool calls
//     but says "stop" (some OpenAI-compatible servers do) reports tool_use,
//     so agent loops run the tools.
//   - usage: OpenAI's prompt_tokens include cached tokens, Anthropic's
//     input_tokens exclude them, so input_tokens = prompt_tokens −
//     prompt_tokens_details.cached_tokens and cache_read_input_tokens =
//     cached_tokens; cache_creation_input_tokens is 0 (OpenAI reports no
//     cache writes).
//   - Reasoning text some backends return (reasoning_content) is dropped,
//     as Weir cannot produce a thinking signature.
//
// # Errors
//
// An OpenAI error body (or any body an error status came with) becomes
// {"type":"error","error":{"type","message"}} with the type chosen by
// status as Anthropic documents it: 400 invalid_request_error, 401
// authentication_error, 403 permission_error, 404 not_found_error, 413
// request_too_large, 429 rate_limit_error, 500 api_error, 503 and 529
// overloaded_error; other 4xx are invalid_request_error and other 5xx
// api_error. The HTTP status is left as it was.
//
// # Streams
//
// See [Stream]: OpenAI chat.completion.chunk events become message_start,
// content_block_start / content_block_delta / content_block_stop per block,
// message_delta and message_stop. message_start carries zero usage because
// OpenAI reports usage only at the end; message_delta carries input_tokens,
// cache_read_input_tokens and output_tokens (the SDK takes input_tokens from
// message_delta when present).
//
// # count_tokens
//
// See [CountTokens]: an estimate from a swappable [Estimator].
//
// Sources: Anthropic's Messages API reference, "Streaming Messages" (event
// flow and event shapes), "Errors" (status → type table, error shape) and
// "Token counting" (request and {"input_tokens"} response), at
// docs.claude.com / docs.anthropic.com.
package anthropic
