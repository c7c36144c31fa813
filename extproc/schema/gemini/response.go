package gemini

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// usage is Gemini's usageMetadata in the terms Weir reports.
type usage struct {
	prompt, candidates, thoughts, cached, toolPrompt int64
}

func parseUsage(u gjson.Result) usage {
	var out usage
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "promptTokenCount":
			out.prompt = v.Int()
		case "candidatesTokenCount":
			out.candidates = v.Int()
		case "thoughtsTokenCount":
			out.thoughts = v.Int()
		case "cachedContentTokenCount":
			out.cached = v.Int()
		case "toolUsePromptTokenCount":
			out.toolPrompt = v.Int()
		}
		return true
	})
	return out
}

// openai converts to Weir's usage: Gemini's promptTokenCount already
// includes cached tokens; thoughts are completion tokens, as OpenAI counts
// reasoning tokens.
func (u usage) openai() provider.Usage {
	prompt := u.prompt + u.toolPrompt
	completion := u.candidates + u.thoughts
	return provider.Usage{
		PromptTokens:     prompt,
		CompletionTokens: completion,
		TotalTokens:      prompt + completion,
		CachedTokens:     u.cached,
	}
}

func appendUsage(out []byte, u usage) []byte {
	o := u.openai()
	out = append(out, `{"prompt_tokens":`...)
	out = strconv.AppendInt(out, o.PromptTokens, 10)
	out = append(out, `,"completion_tokens":`...)
	out = strconv.AppendInt(out, o.CompletionTokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, o.TotalTokens, 10)
	out = append(out, `,"prompt_tokens_details":{"cached_tokens":`...)
	out = strconv.AppendInt(out, o.CachedTokens, 10)
	out = append(out, `},"completion_tokens_details":{"reasoning_tokens":`...)
	out = strconv.AppendInt(out, u.thoughts, 10)
	return append(out, `}}`...)
}

// finishReason maps a Gemini finishReason; toolCalls reports whether the
// candidate called a function.
func finishReason(r string, toolCalls bool) string {
	switch r {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return "content_filter"
	}
	if toolCalls {
		return "tool_calls"
	}
	// STOP, MALFORMED_FUNCTION_CALL, LANGUAGE, OTHER and anything new.
	return "stop"
}

// promptBlocked is the error for a prompt Gemini refused to answer.
func promptBlocked(reason string) *errs.UpstreamError {
	return &errs.UpstreamError{Status: 400, Type: "invalid_request_error", Code: "content_filter",
		Message: "the prompt was blocked by Gemini's safety filters (blockReason " + reason + ")"}
}

// TranslateResponse converts a generateContent or embeddings response (or
// a Gemini error) into OpenAI's shape.
// created is the "created" time (Unix seconds), the caller's clock.
func TranslateResponse(resp *provider.Response, created int64) ([]byte, provider.Usage, error) {
	if resp.Status >= 400 {
		return ErrorBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	js := jsonw.View(resp.Body)
	if !gjson.Valid(js) {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not JSON", errs.ErrUpstreamBadReply)
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not a JSON object", errs.ErrUpstreamBadReply)
	}
	if resp.Endpoint == provider.EndpointEmbeddings {
		return embeddingsResponse(root, resp)
	}
	var candidates, usageMeta, feedback, respID gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "candidates":
			candidates = v
		case "usageMetadata":
			usageMeta = v
		case "promptFeedback":
			feedback = v
		case "responseId":
			respID = v
		}
		return true
	})
	u := parseUsage(usageMeta)
	cand := candidates.Get("0")
	if !cand.IsObject() {
		if r := feedback.Get("blockReason"); r.Str != "" {
			return nil, u.openai(), promptBlocked(r.Str)
		}
		if jsonw.Present(candidates) && !candidates.IsArray() {
			return nil, u.openai(), fmt.Errorf("%w: candidates is not an array", errs.ErrUpstreamBadReply)
		}
	}
	parts := cand.Get("content.parts")
	if jsonw.Present(parts) && !parts.IsArray() {
		return nil, u.openai(), fmt.Errorf("%w: content.parts is not an array", errs.ErrUpstreamBadReply)
	}

	out := make([]byte, 0, len(resp.Body)+256)
	out = append(out, `{"id":`...)
	out = appendID(out, respID, "gemini")
	out = append(out, `,"object":"chat.completion","created":`...)
	out = strconv.AppendInt(out, created, 10)
	out = append(out, `,"model":`...)
	out = jsonw.AppendString(out, resp.Model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)

	nText, nThought, nCalls := 0, 0, 0
	parts.ForEach(func(_, p gjson.Result) bool {
		switch {
		case p.Get("functionCall").IsObject():
			nCalls++
		case p.Get("text").Str != "":
			if p.Get("thought").Bool() {
				nThought++
				return true
			}
			if nText == 0 {
				out = append(out, '"')
			}
			nText++
			out = append(out, jsonw.RawStringBody(p.Get("text"))...)
		}
		return true
	})
	if nText == 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, '"')
	}
	if nThought > 0 {
		out = append(out, `,"reasoning_content":"`...)
		parts.ForEach(func(_, p gjson.Result) bool {
			if p.Get("thought").Bool() {
				out = append(out, jsonw.RawStringBody(p.Get("text"))...)
			}
			return true
		})
		out = append(out, '"')
	}
	if nCalls > 0 {
		out = append(out, `,"tool_calls":[`...)
		n := 0
		parts.ForEach(func(_, p gjson.Result) bool {
			fc := p.Get("functionCall")
			if !fc.IsObject() {
				return true
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = appendToolCall(out, -1, n, fc, p.Get("thoughtSignature"))
			n++
			return true
		})
		out = append(out, ']')
	}
	out = append(out, `,"refusal":null},"logprobs":null,"finish_reason":"`...)
	out = append(out, finishReason(cand.Get("finishReason").Str, nCalls > 0)...)
	out = append(out, `"}],"usage":`...)
	out = appendUsage(out, u)
	return append(out, '}'), u.openai(), nil
}

// appendID writes "chatcmpl-<responseId>", or "chatcmpl-<fallback>".
func appendID(out []byte, id gjson.Result, fallback string) []byte {
	out = append(out, `"chatcmpl-`...)
	if s := jsonw.RawStringBody(id); s != "" {
		out = append(out, s...)
	} else {
		b := jsonw.AppendString(nil, fallback)
		out = append(out, b[1:len(b)-1]...)
	}
	return append(out, '"')
}

// appendToolCall writes one OpenAI tool call for a functionCall. index >= 0
// adds the "index" field streams use; n numbers calls without an id.
func appendToolCall(out []byte, index, n int, fc, sig gjson.Result) []byte {
	out = append(out, '{')
	if index >= 0 {
		out = append(out, `"index":`...)
		out = strconv.AppendInt(out, int64(index), 10)
		out = append(out, ',')
	}
	out = append(out, `"id":"`...)
	if id := jsonw.RawStringBody(fc.Get("id")); id != "" {
		out = append(out, id...)
	} else {
		out = append(out, "call_"...)
		out = strconv.AppendInt(out, int64(n), 10)
	}
	if s := jsonw.RawStringBody(sig); s != "" {
		out = append(out, SigSep...)
		out = append(out, s...)
	}
	out = append(out, `","type":"function","function":{"name":`...)
	out = jsonw.AppendRawString(out, fc.Get("name"))
	out = append(out, `,"arguments":`...)
	if args := fc.Get("args"); args.IsObject() {
		out = jsonw.AppendCompactAsString(out, args.Raw)
	} else {
		out = append(out, `"{}"`...)
	}
	return append(out, "}}"...)
}

// embeddingsResponse converts embedContent ({"embedding":{"values"}}) and
// batchEmbedContents ({"embeddings":[{"values"}]}) responses.
func embeddingsResponse(root gjson.Result, resp *provider.Response) ([]byte, provider.Usage, error) {
	var list []gjson.Result
	if e := root.Get("embedding"); e.IsObject() {
		list = append(list, e)
	} else if es := root.Get("embeddings"); es.IsArray() {
		list = es.Array()
	} else {
		return nil, provider.Usage{}, fmt.Errorf("%w: no embedding in the response", errs.ErrUpstreamBadReply)
	}
	out := make([]byte, 0, len(resp.Body)+64*len(list)+128)
	out = append(out, `{"object":"list","data":[`...)
	for i, e := range list {
		v := e.Get("values")
		if !v.IsArray() {
			return nil, provider.Usage{}, fmt.Errorf("%w: embedding %d has no values", errs.ErrUpstreamBadReply, i)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, `,"embedding":`...)
		out = append(out, v.Raw...)
		out = append(out, '}')
	}
	out = append(out, `],"model":`...)
	out = jsonw.AppendString(out, resp.Model)
	// Gemini's embedding endpoints report no token counts.
	out = append(out, `,"usage":{"prompt_tokens":0,"total_tokens":0}}`...)
	return out, provider.Usage{}, nil
}

// ErrorBody converts a Gemini error body ({"error":{"code","message",
// "status","details"}}, possibly wrapped in an array by stream endpoints),
// or any other body an error status came with, into an OpenAI error body.
func ErrorBody(status int, body []byte) []byte {
	js := jsonw.View(body)
	if gjson.Valid(js) {
		root := gjson.Parse(js)
		if root.IsArray() {
			root = root.Get("0")
		}
		e := root.Get("error")
		if e.IsObject() {
			typ, code := errorType(e.Get("status").Str, status)
			e.Get("details").ForEach(func(_, d gjson.Result) bool {
				if d.Get("reason").Str == "API_KEY_INVALID" {
					typ, code = "authentication_error", "invalid_api_key"
					return false
				}
				return true
			})
			msg := e.Get("message").String()
			if msg == "" {
				msg = "upstream returned status " + strconv.Itoa(status)
			}
			return errs.Encode(msg, typ, code)
		}
		if m := root.Get("message"); m.Type == gjson.String && m.Str != "" {
			typ, code := errorType("", status)
			return errs.Encode(m.Str, typ, code)
		}
	}
	msg := openai.TextMessage(status, body)
	typ, code := errorType("", status)
	return errs.Encode(msg, typ, code)
}

// errorType maps a Google RPC status name (or, failing that, the HTTP
// status) to OpenAI's error type and code.
func errorType(s string, status int) (typ, code string) {
	switch s {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return "invalid_request_error", ""
	case "UNAUTHENTICATED":
		return "authentication_error", "invalid_api_key"
	case "PERMISSION_DENIED":
		return "permission_error", ""
	case "NOT_FOUND":
		return "not_found_error", "not_found"
	case "RESOURCE_EXHAUSTED":
		return "rate_limit_error", "rate_limit_exceeded"
	case "INTERNAL", "UNKNOWN":
		return "server_error", ""
	case "UNAVAILABLE":
		return "server_error", "unavailable"
	case "DEADLINE_EXCEEDED":
		return "server_error", "timeout"
	}
	switch {
	case status == 401:
		return "authentication_error", "invalid_api_key"
	case status == 429:
		return "rate_limit_error", "rate_limit_exceeded"
	case status == 0:
		return "server_error", ""
	}
	return errs.TypeForStatus(status), ""
}
