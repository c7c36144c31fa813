package anthropic

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// appendMessageID writes "msg_…" derived from an OpenAI id (see the
// package documentation).
func appendMessageID(out []byte, id gjson.Result, requestID string) []byte {
	inner := jsonw.RawStringBody(id)
	if !strings.HasPrefix(inner, "msg_") {
		inner = strings.TrimPrefix(inner, "chatcmpl-")
	}
	if inner == "" || inner == "msg_" {
		if requestID == "" {
			requestID = "weir"
		}
		out = append(out, `"msg_`...)
		s := jsonw.AppendString(nil, requestID)
		return append(out, s[1:]...)
	}
	if !strings.HasPrefix(inner, "msg_") {
		out = append(out, `"msg_`...)
	} else {
		out = append(out, '"')
	}
	out = append(out, inner...)
	return append(out, '"')
}

// stopReason maps an OpenAI finish_reason to Anthropic's stop_reason.
func stopReason(finish string, hasTools bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	if hasTools {
		return "tool_use"
	}
	return "end_turn"
}

// appendUsage writes an Anthropic usage object from OpenAI usage.
func appendUsage(out []byte, u provider.Usage) []byte {
	in := max(u.PromptTokens-u.CachedTokens, 0)
	out = append(out, `{"input_tokens":`...)
	out = strconv.AppendInt(out, in, 10)
	out = append(out, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	out = strconv.AppendInt(out, u.CachedTokens, 10)
	out = append(out, `,"output_tokens":`...)
	out = strconv.AppendInt(out, u.CompletionTokens, 10)
	return append(out, '}')
}

func badReply(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errs.ErrUpstreamBadReply}, a...)...)
}

// translateResponse turns a chat.completion body into a Messages message.
func translateResponse(body []byte, clientModel, requestID string) ([]byte, error) {
	js := jsonw.View(body)
	if !gjson.Valid(js) {
		return nil, badReply("body is not JSON")
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, badReply("body is not a JSON object")
	}
	var id, choices, usage, model gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "model":
			model = v
		case "error":
			if v.IsObject() {
				choices = gjson.Result{}
				return false
			}
		}
		return true
	})
	if !choices.IsArray() {
		return nil, badReply("no choices in a chat completion")
	}
	choice := choices.Get("0")
	if !choice.IsObject() {
		return nil, badReply("no choices in a chat completion")
	}
	msg := choice.Get("message")
	content, refusal, calls := msg.Get("content"), msg.Get("refusal"), msg.Get("tool_calls")

	out := make([]byte, 0, len(body)+128)
	out = append(out, `{"id":`...)
	out = appendMessageID(out, id, requestID)
	out = append(out, `,"type":"message","role":"assistant","model":`...)
	if clientModel != "" || model.Type != gjson.String {
		out = jsonw.AppendString(out, clientModel)
	} else {
		out = jsonw.AppendRawString(out, model)
	}
	out = append(out, `,"content":[`...)
	n := 0
	text := func(t gjson.Result) {
		if !jsonw.IsNonEmptyString(t) {
			return
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"type":"text","text":`...)
		out = jsonw.AppendRawString(out, t)
		out = append(out, '}')
	}
	switch {
	case content.Type == gjson.String:
		text(content)
	case content.IsArray():
		// Some servers answer with content parts.
		content.ForEach(func(_, p gjson.Result) bool {
			if p.Get("type").Str == "text" {
				text(p.Get("text"))
			}
			return true
		})
	}
	if n == 0 {
		text(refusal)
	}
	tools := 0
	seed := idSeed(id, requestID)
	if calls.IsArray() {
		calls.ForEach(func(_, c gjson.Result) bool {
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = appendToolUse(out, c.Get("id"), c.Get("function.name"), tools, seed)
			out = append(out, `,"input":`...)
			out = appendInput(out, c.Get("function.arguments"))
			out = append(out, '}')
			tools++
			return true
		})
	}
	out = append(out, `],"stop_reason":"`...)
	out = append(out, stopReason(choice.Get("finish_reason").Str, tools > 0)...)
	out = append(out, `","stop_sequence":null,"usage":`...)
	out = appendUsage(out, openai.ParseUsage(usage))
	return append(out, '}'), nil
}

// idSeed is the text tool call ids are made from when the upstream gave
// none: the OpenAI id without its "chatcmpl-" prefix, else the request id.
func idSeed(id gjson.Result, requestID string) string {
	if inner := strings.TrimPrefix(jsonw.RawStringBody(id), "chatcmpl-"); inner != "" && !strings.ContainsRune(inner, '\\') {
		return inner
	}
	if requestID != "" {
		return requestID
	}
	return "weir"
}

// appendToolUse writes `{"type":"tool_use","id":…,"name":…` (unclosed).
// A missing id is made from seed (see idSeed) and the call's position.
func appendToolUse(out []byte, id, name gjson.Result, index int, seed string) []byte {
	out = append(out, `{"type":"tool_use","id":`...)
	if jsonw.IsNonEmptyString(id) {
		out = jsonw.AppendRawString(out, id)
	} else {
		out = jsonw.AppendString(out, "toolu_"+seed+"_"+strconv.Itoa(index))
	}
	out = append(out, `,"name":`...)
	if name.Type == gjson.String {
		return jsonw.AppendRawString(out, name)
	}
	return append(out, `""`...)
}

// appendInput writes tool call arguments as the input object: arguments
// that are not a JSON object become {} (see the package documentation).
func appendInput(out []byte, args gjson.Result) []byte {
	s := strings.TrimSpace(args.Str)
	if args.Type == gjson.String && s != "" && s[0] == '{' && gjson.Valid(s) {
		return append(out, s...)
	}
	return append(out, "{}"...)
}

// errorType is Anthropic's error type for an HTTP status.
func errorType(status int) string {
	switch {
	case status == 400:
		return "invalid_request_error"
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 413:
		return "request_too_large"
	case status == 429:
		return "rate_limit_error"
	case status == 503 || status == 529:
		return "overloaded_error"
	case status >= 400 && status < 500:
		return "invalid_request_error"
	}
	return "api_error"
}

// streamErrorType maps an OpenAI error's type and code, as found in a
// stream where no status exists, to Anthropic's error type.
func streamErrorType(typ, code string) string {
	switch code {
	case "rate_limit_exceeded":
		return "rate_limit_error"
	case "unavailable", "overloaded":
		return "overloaded_error"
	case "request_too_large":
		return "request_too_large"
	case "invalid_api_key":
		return "authentication_error"
	}
	switch typ {
	case "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "rate_limit_error":
		return typ
	}
	return "api_error"
}

// appendError writes Anthropic's error body.
func appendError(out []byte, typ string, msg gjson.Result, fallback string) []byte {
	out = append(out, `{"type":"error","error":{"type":"`...)
	out = append(out, typ...)
	out = append(out, `","message":`...)
	if jsonw.IsNonEmptyString(msg) {
		out = jsonw.AppendRawString(out, msg)
	} else {
		out = jsonw.AppendString(out, fallback)
	}
	return append(out, "}}"...)
}

// contextLengthPhrase begins Anthropic's context-length error message:
// "prompt is too long: 208310 tokens > 200000 maximum".
const contextLengthPhrase = "prompt is too long"

// ErrorBody converts an error status and its body (OpenAI-shaped, or
// anything an upstream or proxy sent) into Anthropic's error body.
func ErrorBody(status int, body []byte) []byte {
	if wrapped := errs.WrapBody(status, body); wrapped != nil {
		body = wrapped
	}
	msg := gjson.GetBytes(body, "error.message")
	if gjson.GetBytes(body, "error.code").Str == errs.CodeContextLength && !strings.Contains(msg.Str, contextLengthPhrase) {
		// Anthropic's SDK users (agents that compact and retry) match
		// Anthropic's own words for it, whichever provider refused.
		msg = gjson.Result{Type: gjson.String, Str: contextLengthPhrase + ": " + msg.Str}
	}
	return appendError(make([]byte, 0, len(body)+48), errorType(status), msg, "upstream returned status "+strconv.Itoa(status))
}

// Error is the status and Anthropic error body for an error Weir itself
// raises (one wrapping an errs sentinel, or an internal error).
func Error(err error) (int, []byte) {
	status := errs.Status(err)
	return status, ErrorBody(status, errs.Body(err))
}
