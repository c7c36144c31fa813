package openai

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
)

func TestTextMessage(t *testing.T) {
	long := strings.Repeat("世", 1000) // 3000 bytes: byte 1024 is inside a rune
	tests := []struct {
		body []byte
		want string
	}{
		{nil, "upstream returned status 502"},
		{[]byte(" \n "), "upstream returned status 502"},
		{[]byte(" bad gateway\n"), "bad gateway"},
		{[]byte(long), long[:1023]},
	}
	for _, tc := range tests {
		got := TextMessage(502, tc.body)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("TextMessage(%.20q) = %.40q, want %.40q", tc.body, got, tc.want)
		}
	}
}

func TestAppendToolCallAndEnd(t *testing.T) {
	call := gjson.Parse(`{"id":"t1","name":"f","input":{ "a" : [1, 2] }}`)
	got := string(AppendToolCall(nil, call.Get("id"), call.Get("name"), call.Get("input")))
	if want := `{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":[1,2]}"}}`; got != want {
		t.Errorf("AppendToolCall = %s, want %s", got, want)
	}
	got = string(AppendToolCall(nil, call.Get("id"), call.Get("name"), gjson.Result{}))
	if want := `{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}`; got != want {
		t.Errorf("AppendToolCall without input = %s, want %s", got, want)
	}
	got = string(AppendCompletionEnd([]byte(`{"choices":[{"message":{"content":null`), "stop", provider.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}))
	if !gjson.Valid(got) || gjson.Get(got, "choices.0.finish_reason").Str != "stop" || gjson.Get(got, "usage.total_tokens").Int() != 3 {
		t.Errorf("AppendCompletionEnd = %s", got)
	}
}
