package anthropic

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestErrorBodyContextLength: a context-length error from any provider
// (already carrying OpenAI's code) reaches an Anthropic client as
// Anthropic's invalid_request_error saying "prompt is too long", the words
// its SDK users match.
func TestErrorBodyContextLength(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"anthropic", `{"error":{"message":"prompt is too long: 208310 tokens > 200000 maximum","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			"prompt is too long: 208310 tokens > 200000 maximum"},
		{"gemini", `{"error":{"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			"prompt is too long: The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."},
		{"other 400", `{"error":{"message":"bad \"field\"","type":"invalid_request_error","code":null}}`, `bad "field"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ErrorBody(400, []byte(tt.body))
			checkErrorBody(t, out)
			if ty := gjson.GetBytes(out, "error.type").String(); ty != "invalid_request_error" {
				t.Errorf("type = %q in %s", ty, out)
			}
			if m := gjson.GetBytes(out, "error.message").String(); m != tt.want {
				t.Errorf("message = %q, want %q", m, tt.want)
			}
		})
	}
}
