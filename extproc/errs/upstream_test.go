package errs

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestRedactUpstreamContextLength: each provider's context-length error,
// as its translator hands it over (OpenAI's shape, the provider's message
// and type), reaches the client with OpenAI's context_length_exceeded.
func TestRedactUpstreamContextLength(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode string
		wantType string
	}{
		{"openai", 400, `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			CodeContextLength, "invalid_request_error"},
		{"anthropic", 400, `{"error":{"message":"prompt is too long: 208310 tokens > 200000 maximum","type":"invalid_request_error","code":null}}`,
			CodeContextLength, "invalid_request_error"},
		{"gemini", 400, `{"error":{"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","type":"invalid_request_error","code":null}}`,
			CodeContextLength, "invalid_request_error"},
		{"bedrock input too long", 400, `{"error":{"message":"Input is too long for requested model.","type":"invalid_request_error","code":"validation_error"}}`,
			CodeContextLength, "invalid_request_error"},
		{"bedrock claude", 400, `{"error":{"message":"The model returned the following errors: prompt is too long: 205000 tokens > 200000 maximum","type":"invalid_request_error","code":"validation_error"}}`,
			CodeContextLength, "invalid_request_error"},
		{"bedrock too many input tokens", 400, `{"error":{"message":"Malformed input request: too many input tokens, please reformat your input and try again.","type":"invalid_request_error","code":null}}`,
			CodeContextLength, "invalid_request_error"},
		{"other 400 untouched", 400, `{"error":{"message":"messages: at least one message is required","type":"invalid_request_error","code":null}}`,
			"", "invalid_request_error"},
		{"not a 400", 500, `{"error":{"message":"prompt is too long","type":"server_error","code":null}}`,
			"", "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactUpstream(tt.status, []byte(tt.body))
			if c := gjson.GetBytes(got, "error.code").String(); c != tt.wantCode {
				t.Errorf("code = %q, want %q in %s", c, tt.wantCode, got)
			}
			if ty := gjson.GetBytes(got, "error.type").String(); ty != tt.wantType {
				t.Errorf("type = %q, want %q in %s", ty, tt.wantType, got)
			}
			if m := gjson.GetBytes(got, "error.message").String(); m != gjson.Get(tt.body, "error.message").String() {
				t.Errorf("message = %q, want the provider's", m)
			}
		})
	}
}

// TestRetryDelay: a Google RetryInfo delay becomes whole seconds, rounded
// up; anything else gives none.
func TestRetryDelay(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"whole", `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`, "37"},
		{"fraction", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`, "2"},
		{"nanos", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.000000001s"}]}}`, "1"},
		{"zero", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0s"}]}}`, ""},
		{"negative", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"-3s"}]}}`, ""},
		{"garbage", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"soon"}]}}`, ""},
		{"no retry info", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED"}]}}`, ""},
		{"details not array", `{"error":{"details":"x"}}`, ""},
		{"not json", `<html>429</html>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RetryDelay([]byte(tt.body)); got != tt.want {
				t.Errorf("RetryDelay = %q, want %q", got, tt.want)
			}
		})
	}
}
