package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/controller/keyadmin"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/test/devstack"
)

// With a master key, `weir dev` behaves like production: the public
// routes need a virtual key, and keys come from the admin API.
func TestKeyAdminAPIThroughTheGateway(t *testing.T) {
	const master = "mk-e2e-5c1f0a9d7b3e46c28f1a0d9e7b5c3a1f"
	quiet := slog.New(slog.DiscardHandler)
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", KeyAdminListen: "127.0.0.1:0", MasterKey: master, Logger: quiet, AccessLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	admin := func(path, body string) (int, []byte) {
		return adminPost(t, "http://"+st.KeyAdminAddr, master, path, body)
	}
	if resp, _ := chat(t, st.URL, "", "gpt-4o-mini", nil); resp.StatusCode != 401 {
		t.Fatalf("no key: status %d, want 401", resp.StatusCode)
	}
	code, body := admin("/key/generate", `{"models":["gpt-4o-mini"]}`)
	if code != 200 {
		t.Fatalf("generate: %d %s", code, body)
	}
	key := gjson.GetBytes(body, "key").Str
	if !strings.HasPrefix(key, "sk-weir-") {
		t.Fatalf("generate returned %s", body)
	}
	// The keyring syncs from the store; the first request may race the
	// sync, so wait on the store's own signal: a request that succeeds.
	var resp *http.Response
	for range 200 {
		resp, body = chat(t, st.URL, key, "gpt-4o-mini", nil)
		if resp.StatusCode != 401 {
			break
		}
	}
	if resp.StatusCode != 200 {
		t.Fatalf("new key: %d %s", resp.StatusCode, body)
	}
	if resp, _ := chat(t, st.URL, key, "claude-sonnet-4-5", nil); resp.StatusCode != 403 {
		t.Errorf("disallowed model: %d, want 403", resp.StatusCode)
	}
	if code, body := admin("/key/block", `{"key":"`+key+`"}`); code != 200 {
		t.Fatalf("block: %d %s", code, body)
	}
	for range 200 {
		resp, body = chat(t, st.URL, key, "gpt-4o-mini", nil)
		if resp.StatusCode != 200 {
			break
		}
	}
	if resp.StatusCode != 403 || !strings.Contains(string(body), "blocked") {
		t.Errorf("blocked key: %d %s", resp.StatusCode, body)
	}
}

// A team created through the admin API brings its own limits: its keys
// are held to them.
func TestAdminTeamLimitsApply(t *testing.T) {
	const master = "mk-e2e-5c1f0a9d7b3e46c28f1a0d9e7b5c3a1f"
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", KeyAdminListen: "127.0.0.1:0", MasterKey: master, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	admin := func(path, body string) []byte { return adminOK(t, "http://"+st.KeyAdminAddr, master, path, body) }
	admin("/team/new", `{"team_id":"search","rpm_limit":1}`)
	key := gjson.GetBytes(admin("/key/generate", `{"team_id":"search"}`), "key").Str
	var resp *http.Response
	var body []byte
	for range 200 { // until the replica's keyring has the new key
		resp, body = chat(t, st.URL, key, "gpt-4o-mini", nil)
		if resp.StatusCode != 401 {
			break
		}
	}
	if resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	resp, body = chat(t, st.URL, key, "gpt-4o-mini", nil)
	if resp.StatusCode != 429 || !strings.Contains(gjson.GetBytes(body, "error.message").Str, "team rpm") {
		t.Fatalf("second request: %d %s, want 429 naming the team rule", resp.StatusCode, body)
	}
}

// adminPost calls the key admin API at base with the master key.
func adminPost(t *testing.T, base, master, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("authorization", "Bearer "+master)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// adminOK is adminPost for a call that must succeed.
func adminOK(t *testing.T, base, master, path, body string) []byte {
	t.Helper()
	code, b := adminPost(t, base, master, path, body)
	if code != 200 {
		t.Fatalf("%s %s: %d %s", path, body, code, b)
	}
	return b
}

// keyAdminAPI serves the key admin API over s's store and spend book, as
// the daemon does, before s serves requests; it returns the API's URL.
func keyAdminAPI(t *testing.T, s *extproc.Server, master string) string {
	t.Helper()
	keys, spend, err := s.KeyAdminBackend()
	if err != nil {
		t.Fatal(err)
	}
	h, err := keyadmin.New(master, keys, spend)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	return api.URL
}
