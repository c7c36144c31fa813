// Package gemini translates between OpenAI chat completions and embeddings
// (Weir's canonical shape) and the Google Gemini API of AI Studio
// (generativelanguage.googleapis.com):
//
//   - chat: POST /v1beta/models/{model}:generateContent, or
//     :streamGenerateContent?alt=sse for streams;
//   - embeddings: POST /v1beta/models/{model}:embedContent for a string
//     input, :batchEmbedContents for an array of strings.
//
// The backend's base URL is the host (https://generativelanguage.googleapis.com);
// the credential is sent in the x-goog-api-key header.
//
// The bodies are extproc/schema/gemini (shared with Vertex AI); this
// package holds the paths, the api_version option and the key header.
//
// Bodies are read with gjson and written by appending to one buffer; no
// body is unmarshalled into structs. Malformed requests become errors
// wrapping errs.ErrInvalidRequest (errs.ErrUnsupported for features this
// translation lacks); malformed replies errors wrapping
// errs.ErrUpstreamBadReply. Inputs never cause a panic.
//
// Request mapping:
//
//   - system and developer messages become systemInstruction parts, in
//     order; user → "user", assistant → "model"; consecutive messages of
//     the same Gemini role are merged into one content, as Gemini wants
//     alternating turns.
//   - Content parts: text (and assistant refusal) → text; image_url with a
//     base64 data: URL → inlineData; with an http(s) URL → fileData whose
//     mimeType is guessed from the URL's extension (png, jpeg, webp, gif,
//     heic, heif, pdf; image/jpeg when unknown). Whether Gemini fetches an
//     arbitrary URL depends on the model: Files API and YouTube URIs always
//     work. input_audio → inlineData audio/<format>; file parts with a
//     base64 data: URL → inlineData; file ids are ErrUnsupported.
//   - tools → one tools entry with functionDeclarations, the OpenAI JSON
//     schema passed as parametersJsonSchema. tool_choice auto/none/required
//     → functionCallingConfig mode AUTO/NONE/ANY; a named function → ANY
//     with allowedFunctionNames.
//   - assistant tool_calls → functionCall parts (args the parsed arguments);
//     tool messages → functionResponse parts in a user turn, named after the
//     call they answer (found by tool_call_id) and with response
//     {"result": <content>} (the content itself when it is a JSON object).
//   - Thought signatures: a functionCall's thoughtSignature (Gemini 3
//     requires it back on the next turn) is carried inside the OpenAI tool
//     call id, after extproc/schema/gemini.SigSep, and restored from it.
//   - generationConfig: temperature, top_p → topP, max_completion_tokens or
//     max_tokens → maxOutputTokens, stop → stopSequences, seed,
//     presence_penalty/frequency_penalty, response_format json_object →
//     responseMimeType application/json, json_schema → responseMimeType
//     plus responseJsonSchema. n > 1 is ErrUnsupported; other fields
//     (logprobs, user, reasoning_effort, parallel_tool_calls,
//     stream_options...) are dropped.
//   - Embeddings: input string or array of strings; dimensions →
//     outputDimensionality. Token-array inputs and encoding_format base64
//     are ErrUnsupported.
//
// Response mapping:
//
//   - The first candidate becomes choice 0: text parts → content, parts
//     with "thought": true → reasoning_content, functionCall parts →
//     tool_calls (ids "call_<n>", or Gemini's id when it sends one).
//   - finishReason: STOP → stop (tool_calls when the candidate called a
//     function), MAX_TOKENS → length, SAFETY, RECITATION, BLOCKLIST,
//     PROHIBITED_CONTENT, SPII, IMAGE_SAFETY... → content_filter,
//     MALFORMED_FUNCTION_CALL, OTHER, LANGUAGE and unknown → stop.
//   - A prompt blocked before generation (promptFeedback.blockReason, no
//     candidates) is an error: 400 invalid_request_error code
//     content_filter, or an error event in a stream.
//   - usageMetadata: prompt_tokens = promptTokenCount (which includes
//     cached tokens) + toolUsePromptTokenCount; completion_tokens =
//     candidatesTokenCount + thoughtsTokenCount (reported also as
//     completion_tokens_details.reasoning_tokens); cached_tokens =
//     cachedContentTokenCount. Gemini embeddings report no usage.
//   - Errors {"error":{"code","message","status"}} keep the HTTP status;
//     status names map to OpenAI types (INVALID_ARGUMENT →
//     invalid_request_error, UNAUTHENTICATED or an API_KEY_INVALID reason →
//     authentication_error/invalid_api_key, PERMISSION_DENIED →
//     permission_error, NOT_FOUND → not_found_error, RESOURCE_EXHAUSTED →
//     rate_limit_error, INTERNAL/UNAVAILABLE/DEADLINE_EXCEEDED →
//     server_error).
//   - Streams: every SSE data event is a GenerateContentResponse and
//     becomes chat.completion.chunk events; Gemini sends function calls
//     whole, so each becomes one tool_calls delta carrying all arguments. The
//     stream ends with the usage chunk (if the client asked for it) and
//     "data: [DONE]". A stream cut before a finishReason ends with an
//     OpenAI error event, then [DONE].
//
// Backend options (config.Backend.Options): api_version, the path's
// version segment, default "v1beta".
//
// Sources: https://ai.google.dev/api/generate-content (request, response,
// streaming, FinishReason, UsageMetadata), https://ai.google.dev/api/caching#Content
// (Content, Part, FunctionCall, FunctionResponse, FileData),
// https://ai.google.dev/gemini-api/docs/function-calling (tools,
// toolConfig, thought signatures), https://ai.google.dev/api/embeddings
// (embedContent, batchEmbedContents), https://ai.google.dev/gemini-api/docs/troubleshooting
// (error statuses).
package gemini

import (
	"fmt"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
)

// DefaultAPIVersion is the path's version segment.
const DefaultAPIVersion = "v1beta"

// now is the clock for "created" fields; tests replace it.
var now = time.Now

type translator struct {
	headers []provider.Header
	version string
}

// New builds a Gemini translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	t := &translator{version: DefaultAPIVersion}
	for k, v := range b.Options {
		switch k {
		case "api_version":
			if v == "" {
				return nil, fmt.Errorf("gemini: options.api_version must not be empty")
			}
			t.version = v
		default:
			return nil, fmt.Errorf("gemini: unknown option %q (known: api_version)", k)
		}
	}
	if b.Credential != nil && b.Credential.Key != "" {
		t.headers = append(t.headers, provider.Header{Key: "x-goog-api-key", Value: b.Credential.Key.Reveal()})
	}
	t.headers = t.headers[:len(t.headers):len(t.headers)]
	return t, nil
}

var _ provider.Translator = (*translator)(nil)
