package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

// TestKeysLoadingWhileRedisDown: a replica starts with Redis down, so the
// admin API's keys cannot load. A key it does not know may be one of
// them: it answers 503 with Retry-After (SDKs retry it), in the ingress's
// own error format, not 401 "invalid key" (SDKs do not retry it, and the
// user is told the key is wrong). The config's keys serve throughout, a
// malformed key is a 401. Once Redis is up and the keys loaded, the
// store's key is served and a random key is a 401 again.
func TestKeysLoadingWhileRedisDown(t *testing.T) {
	addr := redistest.Reserve(t) // nothing listens there yet
	cfgKey, cfgHash := newKey(t)
	storeKey, _ := newKey(t) // written to Redis once it is up
	g := startGatewayWith(t, limitsBase+fmt.Sprintf(`
limits: {store: redis, fail_mode: open, redis: {addr: %q}}
auth:
  keys:
    - {hash: %s}
`, addr, cfgHash), 1, extproc.Options{})
	s := g.replicas[0]
	refusals := s.Metrics().RefusalsCounter(503, errs.RuleKeysLoading)

	messages := func(key string) (*http.Response, []byte) {
		return post(t, g.URL+"/v1/messages", `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`,
			map[string]string{"x-api-key": key, "anthropic-version": "2023-06-01"})
	}
	// read reads an answer's status, Retry-After, refusal rule and
	// error type and code, from the OpenAI shape or Anthropic's.
	type answer struct {
		status            int
		retry, rule, typ  string
		code, messageText string
	}
	read := func(resp *http.Response, body []byte) answer {
		a := answer{status: resp.StatusCode, retry: resp.Header.Get("retry-after"), rule: resp.Header.Get(errs.HeaderRefusalRule),
			typ: gjson.GetBytes(body, "error.type").Str, code: gjson.GetBytes(body, "error.code").Str,
			messageText: gjson.GetBytes(body, "error.message").Str}
		if gjson.GetBytes(body, "type").Str != "error" && resp.StatusCode >= 400 && strings.Contains(resp.Request.URL.Path, "messages") {
			a.typ = "not Anthropic's shape: " + string(body)
		}
		return a
	}
	loading := func(phase string, a answer, typ, code string) {
		t.Helper()
		if a.status != 503 || a.retry != "5" || a.rule != "keys.loading" || a.typ != typ || a.code != code ||
			!strings.Contains(a.messageText, "keys are still loading") {
			t.Errorf("%s: %+v; want 503, Retry-After 5, rule keys.loading, type %s, code %q, a message that the keys are loading", phase, a, typ, code)
		}
	}

	// Redis down: the store's key, and any other well-formed key, may be
	// one of the keys not loaded yet.
	wantNotReady(t, s, "redis down", "keys:")
	loading("store key, chat", read(chat(t, g.URL, storeKey.Reveal(), "gpt-4o-mini", nil)), "server_error", "unavailable")
	loading("store key, messages", read(messages(storeKey.Reveal())), "overloaded_error", "")
	random, _ := newKey(t)
	loading("random key, chat", read(chat(t, g.URL, random.Reveal(), "gpt-4o-mini", nil)), "server_error", "unavailable")
	if got := testutil.ToFloat64(refusals); got != 3 {
		t.Errorf("weir_admission_refusals_total{503, keys.loading} = %v, want 3", got)
	}
	if resp, body := chat(t, g.URL, cfgKey.Reveal(), "gpt-4o-mini", nil); resp.StatusCode != 200 {
		t.Errorf("config key while redis is down: %d %s", resp.StatusCode, body)
	}
	if a := read(chat(t, g.URL, "sk-weir-not-a-key", "gpt-4o-mini", nil)); a.status != 401 || a.rule != "key.unknown" || a.retry != "" {
		t.Errorf("malformed key while redis is down: %+v, want 401 key.unknown without Retry-After", a)
	}

	// Redis up, with the key in it.
	r := redistest.StartAt(t, addr)
	rc := r.Client()
	defer rc.Close()
	if err := keystore.NewRedis(rc, keystore.Prefix).PutKey(context.Background(),
		&keystore.KeyRecord{Key: vkey.Key{Hash: storeKey.Hash(), Alias: "loading"}}, true); err != nil {
		t.Fatal(err)
	}
	g.await(t, "the store's keys", func() bool {
		return !slices.ContainsFunc(s.NotReady(), func(r string) bool { return strings.HasPrefix(r, "keys:") })
	})
	// The first load may have run before the key was written; the change
	// it announced arrives in a later sync.
	g.await(t, "the store's key", func() bool {
		resp, _ := chat(t, g.URL, storeKey.Reveal(), "gpt-4o-mini", nil)
		return resp.StatusCode != 401
	})
	if resp, body := chat(t, g.URL, storeKey.Reveal(), "gpt-4o-mini", nil); resp.StatusCode != 200 {
		t.Errorf("store key once loaded, chat: %d %s", resp.StatusCode, body)
	}
	if resp, body := messages(storeKey.Reveal()); resp.StatusCode != 200 {
		t.Errorf("store key once loaded, messages: %d %s", resp.StatusCode, body)
	}
	for _, send := range []struct {
		name string
		do   func(string) (*http.Response, []byte)
	}{
		{"chat", func(k string) (*http.Response, []byte) { return chat(t, g.URL, k, "gpt-4o-mini", nil) }},
		{"messages", messages},
	} {
		if a := read(send.do(random.Reveal())); a.status != 401 || a.rule != "key.unknown" || a.retry != "" {
			t.Errorf("random key once loaded, %s: %+v, want 401 key.unknown without Retry-After", send.name, a)
		}
	}
	if got := testutil.ToFloat64(refusals); got != 3 {
		t.Errorf("weir_admission_refusals_total{503, keys.loading} = %v after the load, want still 3", got)
	}
}
