package messages

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// TranslateResponse turns a Messages API response (or error) into an OpenAI
// chat.completion (or error) body; created is its "created" time (Unix
// seconds), the caller's clock.
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
	var id, typ, content, stop, usage, model, upErr gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "type":
			typ = v
		case "content":
			content = v
		case "stop_reason":
			stop = v
		case "usage":
			usage = v
		case "model":
			model = v
		case "error":
			upErr = v
		}
		return true
	})
	if typ.Str == "error" {
		return nil, provider.Usage{}, fmt.Errorf("%w: error with status %d: %s", errs.ErrUpstreamBadReply, resp.Status, upErr.Get("message").String())
	}
	if jsonw.Present(content) && !content.IsArray() {
		return nil, provider.Usage{}, fmt.Errorf("%w: content is not an array", errs.ErrUpstreamBadReply)
	}
	u := ParseUsage(usage)

	out := make([]byte, 0, len(resp.Body)+256)
	out = append(out, `{"id":`...)
	if id.Type == gjson.String && id.Str != "" {
		out = jsonw.AppendRawString(out, id)
	} else {
		out = append(out, `"chatcmpl-anthropic"`...)
	}
	out = append(out, `,"object":"chat.completion","created":`...)
	out = strconv.AppendInt(out, created, 10)
	out = append(out, `,"model":`...)
	if resp.Model != "" || model.Type != gjson.String {
		out = jsonw.AppendString(out, resp.Model)
	} else {
		out = jsonw.AppendRawString(out, model)
	}
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)

	// Text blocks are concatenated by joining the escaped insides of their
	// JSON strings, which needs no unescaping.
	nText, nThink, nTools := 0, 0, 0
	content.ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "text":
			if t := b.Get("text"); t.Type == gjson.String {
				if nText == 0 {
					out = append(out, '"')
				}
				nText++
				out = append(out, jsonw.RawStringBody(t)...)
			}
		case "thinking":
			nThink++
		case "tool_use":
			nTools++
		}
		return true
	})
	if nText == 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, '"')
	}
	if nThink > 0 {
		out = append(out, `,"reasoning_content":"`...)
		content.ForEach(func(_, b gjson.Result) bool {
			if b.Get("type").Str == "thinking" {
				out = append(out, jsonw.RawStringBody(b.Get("thinking"))...)
			}
			return true
		})
		out = append(out, '"')
	}
	if nTools > 0 {
		out = append(out, `,"tool_calls":[`...)
		n := 0
		content.ForEach(func(_, b gjson.Result) bool {
			if b.Get("type").Str != "tool_use" {
				return true
			}
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = openai.AppendToolCall(out, b.Get("id"), b.Get("name"), b.Get("input"))
			return true
		})
		out = append(out, ']')
	}
	return openai.AppendCompletionEnd(out, finishReason(stop.Str), u), u, nil
}

// finishReason maps an Anthropic stop_reason to OpenAI's finish_reason.
func finishReason(s string) string {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	// end_turn, stop_sequence, pause_turn and anything new.
	return "stop"
}

// ParseUsage reads an Anthropic usage object (see [counts]).
func ParseUsage(u gjson.Result) provider.Usage {
	var c counts
	c.take(u, gjson.Result.Int)
	return c.usage()
}

// ErrorBody converts an Anthropic error body, or any other body an error
// status came with, into an OpenAI error body.
func ErrorBody(status int, body []byte) []byte {
	js := jsonw.View(body)
	if gjson.Valid(js) {
		e := gjson.Get(js, "error")
		if e.IsObject() {
			typ, code := errorType(e.Get("type").Str, status)
			msg := e.Get("message").String()
			if msg == "" {
				msg = "upstream returned status " + strconv.Itoa(status)
			}
			return errs.Encode(msg, typ, code)
		}
		if m := gjson.Get(js, "message"); m.Type == gjson.String && m.Str != "" {
			typ, code := errorType("", status)
			return errs.Encode(m.Str, typ, code)
		}
	}
	msg := openai.TextMessage(status, body)
	typ, code := errorType("", status)
	return errs.Encode(msg, typ, code)
}

// errorType maps an Anthropic error type (or, failing that, the status) to
// OpenAI's type and code.
func errorType(t string, status int) (typ, code string) {
	switch t {
	case "invalid_request_error":
		return "invalid_request_error", ""
	case "authentication_error":
		return "authentication_error", "invalid_api_key"
	case "permission_error":
		return "permission_error", ""
	case "not_found_error":
		return "not_found_error", ""
	case "rate_limit_error":
		return "rate_limit_error", "rate_limit_exceeded"
	case "request_too_large":
		return "invalid_request_error", "request_too_large"
	case "api_error":
		return "server_error", ""
	case "overloaded_error":
		return "server_error", "overloaded"
	case "timeout_error":
		return "server_error", "timeout"
	case "billing_error":
		return "invalid_request_error", "billing_error"
	}
	switch {
	case status == 401:
		return "authentication_error", ""
	case status == 403:
		return "permission_error", ""
	case status == 404:
		return "not_found_error", ""
	case status == 413:
		return "invalid_request_error", "request_too_large"
	case status == 429:
		return "rate_limit_error", "rate_limit_exceeded"
	case status == 529:
		return "server_error", "overloaded"
	case status >= 500 || status == 0:
		return "server_error", ""
	}
	return "invalid_request_error", ""
}
