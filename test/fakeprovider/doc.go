// Package fakeprovider implements in-process fake upstream LLM providers that
// speak OpenAI's, Anthropic's, Azure OpenAI's, Gemini's, Bedrock's and Vertex AI's HTTP wire formats: JSON bodies, SSE framing,
// error bodies and the response headers clients look at.
//
// The fakes serve two purposes: they are the built-in providers of the
// default `weir dev` configuration, and they are the upstreams of Weir's
// end-to-end tests, which assert what the upstream received (see
// [Server.Requests]). Every reply is a pure function of the request, the
// x-fake-behavior header and a per-server sequence number (used for ids), so
// tests can assert exact values. Only the "created"/reset timestamps come
// from a clock, which tests can pin with [Server.SetClock].
//
// # Routes
//
// Kind "openai" ([OpenAI]):
//
//   - POST /v1/chat/completions  (stream and non-stream)
//   - POST /v1/completions       (legacy text completion, stream and non-stream)
//   - POST /v1/embeddings        (input string or array of strings;
//     encoding_format "float" or "base64"; optional dimensions, default 8;
//     the vectors are [Embedding] of each input)
//   - GET  /v1/models
//
// Kind "anthropic" ([Anthropic]):
//
//   - POST /v1/messages               (stream and non-stream)
//   - POST /v1/messages/count_tokens
//   - GET  /v1/models
//
// Kind "bedrock" ([Bedrock], Amazon Bedrock Runtime; see bedrock.go for the
// sources and details):
//
//   - POST /model/{modelId}/converse and /converse-stream (the stream is
//     application/vnd.amazon.eventstream frames; stream-error sends a
//     modelStreamErrorException frame; cut-after counts frames)
//   - POST /model/{modelId}/invoke for amazon.titan-embed-* and
//     cohere.embed-* embeddings
//
// Bedrock requests need a well-formed SigV4 Authorization header with a
// .../bedrock/aws4_request scope and X-Amz-Date (403 otherwise; the
// signature is not verified, and with RequireKey the access key id must be
// the key). Errors are {"message"} with x-amzn-ErrorType; every reply has
// x-amzn-RequestId.
//
// Kind "azure" ([Azure]; azure.go lists its sources and differences):
//
//   - POST /openai/deployments/{deployment}/{chat/completions,completions,
//     embeddings}?api-version=... (the deployment is the reply's model;
//     without api-version: 404)
//   - POST /openai/v1/{chat/completions,completions,embeddings}
//
// Bodies and streams are the OpenAI fake's. Auth is the api-key header (or an Entra ID bearer token);
// status=400 answers with Azure's content_filter error.
//
// Kind "gemini" ([Gemini]; gemini.go lists its sources and differences):
//
//   - POST /v1beta/models/{model}:generateContent
//   - POST /v1beta/models/{model}:streamGenerateContent?alt=sse (one
//     GenerateContentResponse per word, CRLF framing, finishReason and full
//     usageMetadata on the last; a function call is one chunk)
//   - POST /v1beta/models/{model}:embedContent and :batchEmbedContents
//   - GET  /v1beta/models
//
// Auth is x-goog-api-key (or ?key=): none is a 403, a wrong one a 400 with
// reason API_KEY_INVALID. Replies, tool calls (mode NONE disables them, ANY
// with allowedFunctionNames forces one), token counting and the behaviours
// status, slow-first-byte, cut-after, exact-usage (maxOutputTokens), cached
// (cachedContentTokenCount), stream-error and non-json-error follow the
// rules below; Gemini has no rate-limit headers.
//
// Kind "vertex" ([Vertex], Google Cloud Vertex AI; vertex.go lists its
// sources and differences):
//
//   - POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent
//     and :streamGenerateContent?alt=sse (the Gemini fake's replies)
//   - POST .../publishers/anthropic/models/{model}:rawPredict and
//     :streamRawPredict (the body must carry "anthropic_version":
//     "vertex-2023-10-16" and no "model"; the Anthropic fake's replies)
//   - POST .../publishers/google/models/{model}:predict (text embeddings)
//   - POST /token, the OAuth2 token endpoint for a service-account key's
//     token_uri (JWT bearer grant; the assertion is not verified); it hands
//     out the required key as the token, if one is set
//
// Every route but /token needs "Authorization: Bearer <token>" (any token,
// or the required key): otherwise 401 UNAUTHENTICATED in Google's format.
//
// Anything else is a 404 in the provider's error format.
//
// # Authentication
//
// With [Server.RequireKey] set, OpenAI requests need "Authorization: Bearer
// <key>" and Anthropic requests need "x-api-key: <key>"; a missing or wrong
// key is a 401 (OpenAI invalid_request_error/invalid_api_key, Anthropic
// authentication_error). Without it any credentials, or none, are accepted.
// Anthropic requests always need an anthropic-version header (400 otherwise).
//
// # Request validation
//
// The fakes reject malformed requests with a 400 in the provider's format so
// that translation bugs in Weir surface as test failures:
//
//   - OpenAI chat: body must be a JSON object; model and a non-empty messages
//     array are required; roles must be system, developer, user, assistant,
//     tool or function; a tool message must answer a tool_call_id of the
//     preceding assistant message, and every tool call of an assistant
//     message must be answered before the next non-tool message; a forced
//     tool_choice must name a declared tool.
//   - Anthropic messages: model and max_tokens (integer >= 1) are required;
//     messages must be non-empty, roles only "user"/"assistant", strictly
//     alternating (stricter than the real API, which merges consecutive
//     turns), content a non-empty string or non-empty block array (the final
//     assistant message may be empty), text blocks non-empty, tool_use
//     blocks only in assistant and tool_result blocks only in user messages,
//     every tool_result must answer a
//     tool_use of the previous assistant message and every tool_use must be
//     answered in the next user message; system is a string or an array of
//     text blocks; tools need a name (and input_schema for custom tools); a
//     forced {"type":"tool"} must name a declared tool.
//
// # Replies
//
// Text replies are
//
//	Hello from fake-<kind>! You said: <last user text, truncated to 200 characters>
//
// where multi-part content contributes its text parts joined by a space. If
// the last message is a tool result the reply is
//
//	Hello from fake-<kind>! Tool result: <tool result content, truncated to 200 characters>
//
// If the request declares tools, tool_choice is not none (OpenAI "none",
// Anthropic {"type":"none"}) and the last message is not a tool result, the
// reply is a single call of the forced tool, or else the first tool, with
// arguments built from the tool's JSON schema: each "required" property, in
// order, gets its first "enum" value if it has one, else a value by type:
// string "test", number 1, integer 1, boolean true, array [], object {},
// null null (untyped: "test"). finish_reason is "tool_calls" / stop_reason
// "tool_use".
//
// If max_tokens (OpenAI: max_completion_tokens, else max_tokens) is smaller
// than the number of words in the text reply, the reply is cut to that many
// words and finish_reason is "length" / stop_reason "max_tokens".
//
// Features of the Messages API (Anthropic, and through it Bedrock
// InvokeModel and Vertex rawPredict), which Weir's native passthrough
// carries untouched; anthropic_features.go cites the sources:
//
//   - stop_sequences: when the text reply contains one, it stops just
//     before the earliest, with stop_reason "stop_sequence" and
//     stop_sequence naming it (in replies and in the stream's
//     message_delta); max_tokens still wins when it cuts first. Not
//     applied with exact-usage.
//   - Prompt caching: the prompt prefix up to the last block with a
//     cache_control breakpoint (the system prompt, or every message up to
//     the last one holding such a block; tools count no tokens) is
//     "written" by the first request with that model, tools and prefix,
//     reported as cache_creation_input_tokens, and "read" by every later
//     one, reported as cache_read_input_tokens; input_tokens is the rest
//     of the counted prompt. The prefixes are kept per server (the latest
//     1024) and forgotten by [Server.Reset]. cache-tokens overrides them.
//   - thinking {"type":"enabled","budget_tokens":N}: N must be at least
//     1024 and below max_tokens (400 otherwise, as the API says). The
//     reply starts with a thinking block, "The user wrote: <last user
//     text, 100 characters>. I will answer as the fake does.", with a
//     signature (base64 of a hash of the text); its words count as output
//     tokens. Streams send it as block 0 (thinking_delta per word, one
//     signature_delta) and the answer as block 1.
//   - anthropic-beta: the header (Anthropic, Vertex) and Bedrock's
//     anthropic_beta body field, which must be an array of strings (400
//     otherwise), are recorded with the request ([Server.Requests]) for
//     tests to assert; they change no reply.
//
// Streams split text into one delta per word (each word with the whitespace
// preceding it, so the deltas concatenate to the exact reply text) and tool
// arguments into three partial-JSON pieces (or fewer for short arguments).
//
// # Token counting
//
// words(s) is the number of whitespace-separated words in s
// (len(strings.Fields(s))).
//
//   - Prompt tokens = sum over messages of (3 + words of the message's text),
//     where a message's text is its text content, text parts, tool result
//     content, thinking text, and for tool calls/tool_use blocks the tool
//     name and the JSON arguments. An Anthropic top-level system prompt counts
//     as one more message; an OpenAI system message is an ordinary message.
//     Tool definitions are not counted.
//   - Completion tokens = words of the reply text; for a tool call, 1 (the
//     name) + words of the arguments JSON.
//   - Embeddings and legacy completions: prompt tokens = sum of words of the
//     inputs/prompts (no per-message overhead).
//   - Anthropic count_tokens returns the same input_tokens as /v1/messages.
//
// # Behaviours
//
// A request can select behaviours with the header x-fake-behavior, a
// comma-separated list (the header may also be repeated). An unknown or
// malformed behaviour is a 400 in the provider's format, so typos fail loudly.
// Behaviours are applied in this order: slow-first-byte, non-json-error,
// empty-error, status, then normal processing.
//
//   - status=<code>: reply with the provider's error body for that status
//     (code 400-599). OpenAI: 400 invalid_request_error, 401
//     invalid_request_error/invalid_api_key, 403 unsupported_country_region_territory,
//     404 model_not_found, 429 type "requests" code rate_limit_exceeded, 500
//     server_error, 503 service_unavailable_error; Anthropic: 400
//     invalid_request_error, 401 authentication_error, 402 billing_error, 403
//     permission_error, 404 not_found_error, 413 request_too_large, 429
//     rate_limit_error, 500 api_error, 504 timeout_error, 529 overloaded_error;
//     other 4xx/5xx map to invalid_request_error / api_error (Anthropic) or
//     invalid_request_error / server_error (OpenAI). A 429 carries
//     "retry-after: 1" and rate-limit headers with zero remaining requests,
//     except from Gemini (and Vertex Gemini), whose 429 has no header and
//     puts the delay in its body, as Google does: error.details[] holds a
//     QuotaFailure, a Help link and a google.rpc.RetryInfo with
//     "retryDelay":"37s".
//   - context-length: after the key check, reply with the provider's own
//     error for a prompt over the model's context window (all 400):
//     OpenAI and Azure "This model's maximum context length is 128000
//     tokens. ..." with type invalid_request_error and code
//     context_length_exceeded; Anthropic (and Vertex rawPredict)
//     invalid_request_error "prompt is too long: 208310 tokens > 200000
//     maximum"; Gemini (and Vertex Gemini) INVALID_ARGUMENT "The input
//     token count (1200000) exceeds the maximum number of tokens allowed
//     (1048576)."; Bedrock ValidationException "Input is too long for
//     requested model.".
//   - slow-first-byte=<duration>: wait (Go duration, e.g. 250ms) before
//     writing anything; the wait ends early, writing nothing, when the request
//     context is cancelled.
//   - cut-after=<n>: for a stream, write n SSE events (pings and the [DONE]
//     sentinel count) and then abort the connection without the terminal
//     event (if the stream has n events or fewer it is written whole and the
//     connection is still aborted after event n); for a non-stream reply,
//     write the headers (with the full Content-Length) and the first n bytes
//     of the body, then abort. Aborting uses panic(http.ErrAbortHandler), so
//     serve the fake with an http.Server (Start or httptest.NewServer), not
//     by calling ServeHTTP on a ResponseRecorder.
//   - hold-after=<n>: for a stream, write n events (frames for Bedrock) and
//     then keep the connection open, writing nothing, until the request's
//     context ends (the client or the gateway hung up); then abort. It
//     holds a stream mid-way for a client that disconnects.
//   - exact-usage: completion tokens = the request's max_tokens (OpenAI:
//     max_completion_tokens, else max_tokens); text replies are padded with
//     " lorem" (or cut) to exactly that many words. A request without a
//     max_tokens value is a 400.
//   - cached=<n> (OpenAI): usage.prompt_tokens_details.cached_tokens = n. The
//     cached tokens are part of prompt_tokens, which is raised to n if the
//     counted prompt is shorter.
//   - cache-tokens=<read>,<write> (Anthropic): usage.cache_read_input_tokens =
//     read and cache_creation_input_tokens = write, in addition to
//     input_tokens (which stays the counted prompt, as in Anthropic's usage
//     where the three add up to the whole prompt).
//   - stream-error: in a stream, after the first text (or argument) delta,
//     send an error event and end the stream without the terminal event.
//     Anthropic: "event: error" with {"type":"error","error":{"type":
//     "overloaded_error","message":"Overloaded"}}; OpenAI: a data line with
//     {"error":{...,"type":"server_error"}}.
//   - non-json-error=<status>: reply with that status and an HTML body
//     (Content-Type text/html), as a proxy in front of the provider would.
//   - empty-error=<status>: reply with that status and no body
//     (Content-Length 0), as a load balancer or an auth proxy may.
//
// # Response headers
//
// Every response carries a request id (OpenAI x-request-id, Anthropic
// request-id) of the form req_fake<sequence> and rate-limit headers with
// fixed values: OpenAI x-ratelimit-{limit,remaining,reset}-{requests,tokens}
// plus openai-processing-ms, openai-version and openai-organization;
// Anthropic anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
// {limit,remaining,reset} (reset is an RFC 3339 time one minute after the
// clock).
//
// # Sources
//
// The formats follow the providers' public documentation, cited next to the
// code that produces each shape.
package fakeprovider
