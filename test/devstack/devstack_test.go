package devstack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// userConfig routes my-claude to the Anthropic fake through the variable
// devstack offers, with a key from the caller's own lookup.
const userConfig = `version: weir.dev/v1alpha1
backends:
  - name: my-anthropic
    provider: anthropic
    base_url: ${WEIR_FAKE_ANTHROPIC_URL}
    credential:
      value: ${MY_ANTHROPIC_KEY}
models:
  - name: my-claude
    backends: [my-anthropic]
    provider_model: claude-sonnet-4-5
`

// withOpenAI adds a second backend and model, for the reload test.
var withOpenAI = strings.Replace(userConfig, "models:", `  - name: my-openai
    provider: openai
    base_url: ${WEIR_FAKE_OPENAI_URL}/v1
models:`, 1) + `  - name: my-gpt
    backends: [my-openai]
    provider_model: gpt-4o-mini
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func startFile(t *testing.T, path string) (*Stack, error) {
	t.Helper()
	return Start(context.Background(), Options{
		Listen:     "127.0.0.1:0",
		ConfigPath: path,
		// The test reloads with Stack.Reload, never the poller.
		ReloadEvery: time.Hour,
		Lookup: func(k string) (string, bool) {
			if k == "MY_ANTHROPIC_KEY" {
				return "sk-ant-mine", true
			}
			// The fakes' variables must win over the process environment.
			if strings.HasPrefix(k, "WEIR_FAKE_") {
				return "http://wrong.invalid", true
			}
			return "", false
		},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog: io.Discard,
	})
}

func chat(t *testing.T, st *Stack, model string) (int, string) {
	t.Helper()
	resp, err := http.Post(st.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hello"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestUserConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	writeFile(t, path, userConfig)
	st, err := startFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	st.Anthropic.RequireKey("sk-ant-mine")

	if got, want := st.Config().Backends[0].BaseURL, st.FakeURLs["WEIR_FAKE_ANTHROPIC_URL"]; got != want || want == "" {
		t.Fatalf("base_url = %q, want the Anthropic fake's %q", got, want)
	}
	code, body := chat(t, st, "my-claude")
	if code != http.StatusOK {
		t.Fatalf("my-claude: %d %s", code, body)
	}
	var out struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Object != "chat.completion" || len(out.Choices) != 1 || out.Choices[0].Message.Content == "" {
		t.Fatalf("not an OpenAI chat completion (%v): %s", err, body)
	}
	if code, body := chat(t, st, "gpt-4o-mini"); code != http.StatusNotFound {
		t.Fatalf("a default-config model answered with the user's config: %d %s", code, body)
	}

	// A change adds a backend: the extproc and the data plane both see it.
	writeFile(t, path, withOpenAI)
	if ok, err := st.Reload(); !ok || err != nil {
		t.Fatalf("reload = %v, %v", ok, err)
	}
	if code, body := chat(t, st, "my-gpt"); code != http.StatusOK {
		t.Fatalf("my-gpt after reload: %d %s", code, body)
	}
	if ok, err := st.Reload(); ok || err != nil {
		t.Fatalf("reload of unchanged file = %v, %v", ok, err)
	}

	// A broken file is reported and the running config stays.
	writeFile(t, path, "version: weir.dev/v1alpha1\nbackends: [{name: x, provider: nope}]\n")
	if ok, err := st.Reload(); ok || err == nil {
		t.Fatalf("reload of a bad file = %v, %v", ok, err)
	}
	if code, body := chat(t, st, "my-gpt"); code != http.StatusOK {
		t.Fatalf("my-gpt after a failed reload: %d %s", code, body)
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"missing", "", []string{"read config", "missing.yaml"}},
		{"unset-var", strings.ReplaceAll(userConfig, "MY_ANTHROPIC_KEY", "NOT_SET_ANYWHERE"), []string{"unset-var.yaml", "NOT_SET_ANYWHERE"}},
		{"unknown-field", userConfig + "colour: blue\n", []string{"unknown-field.yaml", "colour"}},
		{"unknown-backend", strings.Replace(userConfig, "[my-anthropic]", "[nope]", 1), []string{"unknown-backend.yaml", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			if tc.name != "missing" {
				writeFile(t, path, tc.content)
			}
			st, err := startFile(t, path)
			if err == nil {
				st.Close()
				t.Fatal("started with a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
