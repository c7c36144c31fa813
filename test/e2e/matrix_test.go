package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the provider matrix in README.md")

// matrixRow is one provider of the embedded default config.
type matrixRow struct {
	provider, chat, embed string
}

var matrixRows = []matrixRow{
	{"OpenAI (and OpenAI-compatible presets)", "gpt-4o-mini", "text-embedding-3-small"},
	{"Anthropic", "claude-sonnet-4-5", ""},
	{"Azure OpenAI", "azure-gpt-4o-mini", "azure-text-embedding-3-small"},
	{"Google Gemini", "gemini-2.5-flash", "gemini-embedding-001"},
	{"AWS Bedrock (Converse)", "bedrock-nova-lite", "bedrock-titan-embed-text-v2"},
	{"AWS Bedrock, Claude (InvokeModel)", "bedrock-invoke-claude-sonnet-4-5", ""},
	{"Vertex AI, Gemini", "vertex-gemini-2.5-flash", ""},
	{"Vertex AI, Claude (rawPredict)", "vertex-claude-sonnet-4-5", ""},
}

// A 1x1 PNG, for the image column.
const pngDataURL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

func rawPost(t *testing.T, url, body string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("content-type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestProviderMatrix runs every feature against every provider through the
// whole gateway and renders the result as the README's provider matrix.
// The README must match what the tests observe (`go test ./test/e2e -run
// TestProviderMatrix -update-readme` rewrites it), so it cannot drift.
func TestProviderMatrix(t *testing.T) {
	st := startStack(t)
	chatURL, embURL, msgURL := st.URL+"/v1/chat/completions", st.URL+"/v1/embeddings", st.URL+"/v1/messages"
	features := []struct {
		name string
		run  func(r matrixRow) (bool, bool) // (applies, works)
	}{
		{"chat", func(r matrixRow) (bool, bool) {
			code, b := rawPost(t, chatURL, `{"model":"`+r.chat+`","messages":[{"role":"user","content":"hi"}]}`, nil)
			return true, code == 200 && strings.Contains(gjson.GetBytes(b, "choices.0.message.content").Str, "You said: hi")
		}},
		{"stream", func(r matrixRow) (bool, bool) {
			code, b := rawPost(t, chatURL, `{"model":"`+r.chat+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
			return true, code == 200 && bytes.Contains(b, []byte("data: [DONE]")) && bytes.Contains(b, []byte(`"finish_reason":"stop"`))
		}},
		{"tools", func(r matrixRow) (bool, bool) {
			code, b := rawPost(t, chatURL, `{"model":"`+r.chat+`","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}`, nil)
			return true, code == 200 && gjson.GetBytes(b, "choices.0.message.tool_calls.0.function.name").Str == "get_weather"
		}},
		{"images", func(r matrixRow) (bool, bool) {
			code, _ := rawPost(t, chatURL, `{"model":"`+r.chat+`","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"`+pngDataURL+`"}}]}]}`, nil)
			return true, code == 200
		}},
		{"embeddings", func(r matrixRow) (bool, bool) {
			if r.embed == "" {
				return false, false
			}
			code, b := rawPost(t, embURL, `{"model":"`+r.embed+`","input":"hello"}`, nil)
			return true, code == 200 && len(gjson.GetBytes(b, "data.0.embedding").Array()) > 0
		}},
		{"usage", func(r matrixRow) (bool, bool) {
			_, b := rawPost(t, chatURL, `{"model":"`+r.chat+`","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, nil)
			return true, bytes.Contains(b, []byte(`"completion_tokens":`)) && !bytes.Contains(b, []byte(`"completion_tokens":0`))
		}},
		{"errors", func(r matrixRow) (bool, bool) {
			code, b := rawPost(t, chatURL, `{"model":"`+r.chat+`","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-fake-behavior": "status=429"})
			return true, code == 429 && gjson.GetBytes(b, "error.message").Str != ""
		}},
		{"/v1/messages", func(r matrixRow) (bool, bool) {
			code, b := rawPost(t, msgURL, `{"model":"`+r.chat+`","max_tokens":32,"messages":[{"role":"user","content":"hi"}]}`, nil)
			return true, code == 200 && gjson.GetBytes(b, "type").Str == "message"
		}},
	}
	var sb strings.Builder
	sb.WriteString("| provider | model |")
	for _, f := range features {
		sb.WriteString(" " + f.name + " |")
	}
	sb.WriteString("\n| --- | --- |" + strings.Repeat(" --- |", len(features)) + "\n")
	for _, r := range matrixRows {
		fmt.Fprintf(&sb, "| %s | `%s` |", r.provider, r.chat)
		for _, f := range features {
			applies, works := f.run(r)
			switch {
			case !applies:
				sb.WriteString(" — |")
			case works:
				sb.WriteString(" ✓ |")
			default:
				sb.WriteString(" ✗ |")
				t.Errorf("%s: %s does not work", r.provider, f.name)
			}
		}
		sb.WriteString("\n")
	}
	table := sb.String()
	const begin, end = "<!-- provider-matrix:begin (generated by TestProviderMatrix) -->\n", "<!-- provider-matrix:end -->"
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the provider-matrix markers")
	}
	cur := string(readme[i+len(begin) : j])
	if cur == table {
		return
	}
	if !*updateReadme {
		t.Fatalf("README.md provider matrix is stale; run: go test ./test/e2e -run TestProviderMatrix -update-readme\nwant:\n%s", table)
	}
	out := append(append(append([]byte(nil), readme[:i+len(begin)]...), table...), readme[j:]...)
	if err := os.WriteFile("../../README.md", out, 0o644); err != nil {
		t.Fatal(err)
	}
}
