package fakeprovider

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestContextLengthBehavior: x-fake-behavior: context-length makes each
// fake answer with its provider's own context-length error.
func TestContextLengthBehavior(t *testing.T) {
	beh := map[string]string{BehaviorHeader: "context-length"}
	bearer := map[string]string{BehaviorHeader: "context-length", "Authorization": "Bearer tok"}
	cases := []struct {
		name string
		kind Kind
		path string
		hdr  map[string]string
		// path in the error body to the message and its expected start
		msgPath, msg string
		// a further field and value
		field, value string
	}{
		{"openai", OpenAI, "/v1/chat/completions", beh, "error.message", "This model's maximum context length is", "error.code", "context_length_exceeded"},
		{"azure", Azure, "/openai/v1/chat/completions", beh, "error.message", "This model's maximum context length is", "error.code", "context_length_exceeded"},
		{"anthropic", Anthropic, "/v1/messages", beh, "error.message", "prompt is too long: ", "error.type", "invalid_request_error"},
		{"gemini", Gemini, "/v1beta/models/m:generateContent", beh, "error.message", "The input token count (", "error.status", "INVALID_ARGUMENT"},
		{"vertex gemini", Vertex, vxBase + "google/models/gemini-2.5-flash:generateContent", bearer, "error.message", "The input token count (", "error.status", "INVALID_ARGUMENT"},
		{"vertex claude", Vertex, vxBase + "anthropic/models/claude-haiku-4-5@20251001:rawPredict", bearer, "error.message", "prompt is too long: ", "error.type", "invalid_request_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newTest(t, tc.kind)
			r := do(t, tc.kind, "POST", url+tc.path, `{}`, tc.hdr)
			if r.Status != 400 {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			if m := gjson.GetBytes(r.Body, tc.msgPath).String(); !strings.HasPrefix(m, tc.msg) {
				t.Errorf("message %q, want it to start %q", m, tc.msg)
			}
			if v := gjson.GetBytes(r.Body, tc.field).String(); v != tc.value {
				t.Errorf("%s = %q, want %q", tc.field, v, tc.value)
			}
		})
	}
	t.Run("bedrock", func(t *testing.T) {
		_, url := newTest(t, Bedrock)
		resp, body := doBedrock(t, url, "/model/m/converse", `{}`, true, "bedrock", beh)
		if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") == "" ||
			!strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "ValidationException") ||
			gjson.GetBytes(body, "message").String() != "Input is too long for requested model." {
			t.Errorf("status %d, %v: %s", resp.StatusCode, resp.Header, body)
		}
	})
}
