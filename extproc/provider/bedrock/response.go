package bedrock

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/messages"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// Converse response: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax
// (output.message.content, stopReason, usage: TokenUsage
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html).
// Errors: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors
// and https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html.

// TranslateResponse converts a Converse, InvokeModel (Anthropic, Titan,
// Cohere) or error body. The operation is recognised by the body's shape.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	if resp.Status >= 400 {
		return ErrorBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	if resp.Endpoint == provider.EndpointMessages {
		// InvokeModel's Anthropic reply is a Messages response.
		return messages.NativeResponse(resp.Body, resp.Model)
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
		return translateEmbeddingsResponse(root, resp.Model)
	}
	if !root.Get("output").Exists() && root.Get("type").Str == "message" {
		return messages.TranslateResponse(resp, now().Unix())
	}
	var output, stop, usage gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "output":
			output = v
		case "stopReason":
			stop = v
		case "usage":
			usage = v
		}
		return true
	})
	content := output.Get("message.content")
	if !content.IsArray() {
		return nil, provider.Usage{}, fmt.Errorf("%w: output.message.content is not an array", errs.ErrUpstreamBadReply)
	}
	u := parseUsage(usage)

	out := make([]byte, 0, len(resp.Body)+256)
	out = append(out, `{"id":"chatcmpl-bedrock","object":"chat.completion","created":`...)
	out = strconv.AppendInt(out, now().Unix(), 10)
	out = append(out, `,"model":`...)
	out = jsonw.AppendString(out, resp.Model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	nText, nThink, nTools := 0, 0, 0
	content.ForEach(func(_, b gjson.Result) bool {
		if t := b.Get("text"); t.Type == gjson.String {
			if nText == 0 {
				out = append(out, '"')
			}
			nText++
			out = append(out, jsonw.RawStringBody(t)...)
		} else if b.Get("reasoningContent.reasoningText.text").Type == gjson.String {
			nThink++
		} else if b.Get("toolUse").IsObject() {
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
			out = append(out, jsonw.RawStringBody(b.Get("reasoningContent.reasoningText.text"))...)
			return true
		})
		out = append(out, '"')
	}
	if nTools > 0 {
		out = append(out, `,"tool_calls":[`...)
		n := 0
		content.ForEach(func(_, b gjson.Result) bool {
			tu := b.Get("toolUse")
			if !tu.IsObject() {
				return true
			}
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = openai.AppendToolCall(out, tu.Get("toolUseId"), tu.Get("name"), tu.Get("input"))
			return true
		})
		out = append(out, ']')
	}
	return openai.AppendCompletionEnd(out, finishReason(stop.Str), u), u, nil
}

// finishReason maps a Converse stopReason to OpenAI's finish_reason.
func finishReason(s string) string {
	switch s {
	case "tool_use":
		return "tool_calls"
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence and anything new
}

// parseUsage reads a TokenUsage object.
func parseUsage(u gjson.Result) provider.Usage {
	var in, out, read, write, total int64
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "inputTokens":
			in = v.Int()
		case "outputTokens":
			out = v.Int()
		case "cacheReadInputTokens":
			read = v.Int()
		case "cacheWriteInputTokens":
			write = v.Int()
		case "totalTokens":
			total = v.Int()
		}
		return true
	})
	return makeUsage(in, out, read, write, total)
}

func makeUsage(in, out, read, write, total int64) provider.Usage {
	prompt := in + read + write
	return provider.Usage{
		PromptTokens:     prompt,
		CompletionTokens: out,
		TotalTokens:      max(prompt+out, total),
		CachedTokens:     read,
		CacheWriteTokens: write,
	}
}

// errorKind maps a Bedrock error status (and, in streams, exception type)
// to OpenAI's type and code.
func errorKind(status int, exception string) (typ, code string) {
	switch exception {
	case "validationException", "ValidationException":
		return "invalid_request_error", ""
	case "accessDeniedException", "AccessDeniedException":
		return "permission_error", ""
	case "resourceNotFoundException", "ResourceNotFoundException":
		return "not_found_error", "model_not_found"
	case "throttlingException", "ThrottlingException":
		return "rate_limit_error", "rate_limit_exceeded"
	case "modelTimeoutException", "ModelTimeoutException":
		return "server_error", "timeout"
	case "modelErrorException", "ModelErrorException", "modelStreamErrorException", "ModelStreamErrorException":
		return "server_error", "model_error"
	case "serviceUnavailableException", "ServiceUnavailableException", "modelNotReadyException", "ModelNotReadyException":
		return "server_error", "service_unavailable"
	case "internalServerException", "InternalServerException":
		return "server_error", ""
	}
	switch status {
	case 400:
		return "invalid_request_error", ""
	case 401:
		return "authentication_error", ""
	case 403:
		return "permission_error", ""
	case 404:
		return "not_found_error", "model_not_found"
	case 408:
		return "server_error", "timeout"
	case 413:
		return "invalid_request_error", "request_too_large"
	case 424:
		return "server_error", "model_error"
	case 429:
		return "rate_limit_error", "rate_limit_exceeded"
	case 503:
		return "server_error", "service_unavailable"
	}
	if status >= 500 || status == 0 {
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

// ErrorBody converts a Bedrock error body ({"message":"..."}, sometimes
// "Message"), or any other body an error status came with, into an
// OpenAI error body.
func ErrorBody(status int, body []byte) []byte {
	typ, code := errorKind(status, "")
	js := jsonw.View(body)
	msg := ""
	if gjson.Valid(js) {
		root := gjson.Parse(js)
		for _, k := range []string{"message", "Message", "error.message"} {
			if m := root.Get(k); m.Type == gjson.String && m.Str != "" {
				msg = m.Str
				break
			}
		}
	} else {
		msg = openai.TextMessage(status, body)
	}
	if msg == "" {
		msg = "upstream returned status " + strconv.Itoa(status)
	}
	return errs.Encode(msg, typ, code)
}
