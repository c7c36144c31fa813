package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/test/devstack"
)

// startErrorStack runs headersConfig plus Claude on Vertex (rawPredict).
func startErrorStack(t *testing.T) (*devstack.Stack, string) {
	t.Helper()
	key, hash := newKey(t)
	cfg := strings.Replace(headersConfig, "models:\n",
		"models:\n  - {name: vertex-claude-haiku-4-5, backends: [vx], provider_model: \"claude-haiku-4-5@20251001\"}\n", 1)
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard,
		ConfigYAML: []byte(strings.ReplaceAll(cfg, "KEYHASH", hash)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st, key.Reveal()
}

// TestContextLengthError: each provider's own context-length error
// reaches an OpenAI client as a 400 invalid_request_error with code
// context_length_exceeded, and an Anthropic client as Anthropic's
// invalid_request_error saying "prompt is too long".
func TestContextLengthError(t *testing.T) {
	st, key := startErrorStack(t)
	models := []string{"gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash",
		"vertex-gemini-2.5-flash", "vertex-claude-haiku-4-5", "bedrock-claude-sonnet-4-5"}
	hdr := map[string]string{"authorization": "Bearer " + key, "x-fake-behavior": "context-length"}
	for _, m := range models {
		body := `{"model":"` + m + `","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
		t.Run(m+" openai", func(t *testing.T) {
			resp, b := post(t, st.URL+"/v1/chat/completions", body, hdr)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			if typ, code := gjson.GetBytes(b, "error.type").Str, gjson.GetBytes(b, "error.code").Str; typ != "invalid_request_error" || code != "context_length_exceeded" {
				t.Errorf("type %q code %q: %s", typ, code, b)
			}
		})
		t.Run(m+" anthropic", func(t *testing.T) {
			resp, b := post(t, st.URL+"/v1/messages", body, hdr)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			if gjson.GetBytes(b, "type").Str != "error" || gjson.GetBytes(b, "error.type").Str != "invalid_request_error" ||
				!strings.HasPrefix(gjson.GetBytes(b, "error.message").Str, "prompt is too long") {
				t.Errorf("not Anthropic's context-length error: %s", b)
			}
		})
	}
}

// TestGeminiRetryInfo: Google's 429 carries its retry delay only in the
// body (google.rpc.RetryInfo "37s"); the client gets it as Retry-After,
// on both ingresses.
func TestGeminiRetryInfo(t *testing.T) {
	st, key := startErrorStack(t)
	hdr := map[string]string{"authorization": "Bearer " + key, "x-fake-behavior": "status=429"}
	for _, m := range []string{"gemini-2.5-flash", "vertex-gemini-2.5-flash"} {
		for _, path := range []string{"/v1/chat/completions", "/v1/messages"} {
			t.Run(m+" "+path, func(t *testing.T) {
				body := `{"model":"` + m + `","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
				resp, b := post(t, st.URL+path, body, hdr)
				if resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("status %d, want 429: %s", resp.StatusCode, b)
				}
				if ra := resp.Header.Get("retry-after"); ra != "37" {
					t.Errorf("retry-after %q, want 37", ra)
				}
				if strings.Contains(string(b), "RetryInfo") {
					t.Errorf("provider details crossed: %s", b)
				}
			})
		}
	}
}
