//go:build dev

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const devUserConfig = `version: weir.dev/v1alpha1
backends:
  - name: mine
    provider: anthropic
    base_url: ${WEIR_FAKE_ANTHROPIC_URL}
    credential:
      value: sk-ant-secret-in-config
models:
  - name: my-claude
    backends: [mine]
    provider_model: claude-sonnet-4-5
`

// startDev runs `weir dev` with args and returns its ready line and the
// stderr printed before it.
func startDev(t *testing.T, args ...string) (map[string]string, string) {
	t.Helper()
	t.Setenv(envMasterKey, "")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runDev(ctx, append([]string{"--listen", "127.0.0.1:0", "--admin", "", "--log-level", "error"}, args...), io.Discard, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("weir dev: %v", err)
		}
	})
	var before strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		var rec map[string]string
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "weir dev ready" {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return rec, before.String()
		}
		before.WriteString(line + "\n")
	}
	t.Fatalf("weir dev ended before its ready line: %v\n%s", sc.Err(), before.String())
	return nil, ""
}

func TestDevConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(devUserConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	ready, banner := startDev(t, "--config", path)
	for _, want := range []string{"NOT ENVOY", "Config: " + path, "mine", "built-in fake, WEIR_FAKE_ANTHROPIC_URL", "my-claude"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, "sk-ant-secret") {
		t.Errorf("banner shows a credential:\n%s", banner)
	}
	if ready["config"] != path || ready["url"] == "" {
		t.Errorf("ready line = %v", ready)
	}
	resp, err := http.Post(ready["url"]+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"my-claude","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"chat.completion"`) {
		t.Fatalf("my-claude: %d %s", resp.StatusCode, b)
	}
}

func TestDevDefaultBanner(t *testing.T) {
	ready, banner := startDev(t)
	if !strings.Contains(banner, "NOT ENVOY") || !strings.Contains(banner, "embedded default") || ready["config"] != "embedded default" {
		t.Errorf("ready %v, banner:\n%s", ready, banner)
	}
}

func TestDevConfigError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(devUserConfig, "[mine]", "[missing-backend]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envMasterKey, "")
	err := runDev(context.Background(), []string{"--listen", "127.0.0.1:0", "--admin", "", "--config", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "missing-backend") {
		t.Fatalf("runDev with a bad config = %v, want an error naming the file and the problem", err)
	}
}
