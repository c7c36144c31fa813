package openai

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// AppendToolCall writes one entry of a chat.completion message's
// tool_calls: id and name are JSON strings, input the call's arguments as
// a JSON object ("{}" when absent).
func AppendToolCall(out []byte, id, name, input gjson.Result) []byte {
	out = append(out, `{"id":`...)
	out = jsonw.AppendRawString(out, id)
	out = append(out, `,"type":"function","function":{"name":`...)
	out = jsonw.AppendRawString(out, name)
	out = append(out, `,"arguments":`...)
	if input.Exists() {
		out = jsonw.AppendCompactAsString(out, input.Raw)
	} else {
		out = append(out, `"{}"`...)
	}
	return append(out, `}}`...)
}

// AppendCompletionEnd closes a chat.completion whose single choice's
// message is open after its content: refusal, finish_reason and usage.
func AppendCompletionEnd(out []byte, finish string, u provider.Usage) []byte {
	out = append(out, `,"refusal":null},"logprobs":null,"finish_reason":"`...)
	out = append(out, finish...)
	out = append(out, `"}],"usage":`...)
	out = AppendUsage(out, u)
	return append(out, '}')
}

// TextMessage is an error body that is not JSON as an error message: cut
// to 1 KiB on a rune boundary, or naming the status when it is empty.
func TextMessage(status int, body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) > 1024 {
		i := 1024
		for k := 0; k < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(b[i]); k++ {
			i--
		}
		b = b[:i]
	}
	if len(b) == 0 {
		return "upstream returned status " + strconv.Itoa(status)
	}
	return string(b)
}
