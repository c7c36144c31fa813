package extproc

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/metrics"
	"github.com/weir-ai/weir/extproc/vkey"
)

const refusalBackends = `
version: weir.dev/v1alpha1
backends:
  - name: oai
    provider: openai
    base_url: https://api.openai.example/v1
    credential: {value: sk-upstream}
models:
  - name: gpt-4o-mini
    backends: [oai]
  - name: small
    provider_model: gpt-4o-mini
    context_window: 100
    backends: [oai]
  - name: openai/*
    backends: [oai]
`

type testKey struct {
	secret vkey.Secret
	hash   string
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	k, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return testKey{k, k.Hash().String()}
}

// refusalServer serves cfg with its own metrics and a JSON log in buf,
// which the server's background goroutines (the key syncer retrying a
// store that is down) may write while the test reads it.
func refusalServer(t *testing.T, cfg string) (*Server, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	s := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.NewJSONHandler(buf, nil))})
	if err := s.LoadConfig([]byte(cfg), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, buf
}

// refusedLines are the log's "refused" lines.
func refusedLines(t *testing.T, buf *lockedBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(buf.bytes(), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "refused" {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusalNamesRule: every refusal class, through the router filter,
// answers with its status, the x-weir-refusal-rule header, a message that
// ends with the rule, one "refused" log line at info naming the rule and
// the key's prefix (never the key), and one increment of
// weir_admission_refusals_total{status, rule}. A malformed request is not
// a refusal: no header, no line, no count.
func TestRefusalNamesRule(t *testing.T) {
	keys := map[string]testKey{}
	for _, n := range []string{"open", "blocked", "expired", "models", "teamBlocked", "teamModels", "userModels",
		"rpm", "modelRPM", "tpm", "budget", "forever", "tinyBudget", "unpriced"} {
		keys[n] = newTestKey(t)
	}
	cfg := refusalBackends + fmt.Sprintf(`
auth:
  keys:
    - {hash: %s}
    - {hash: %s, blocked: true}
    - {hash: %s, expires: 2020-01-01T00:00:00Z}
    - {hash: %s, models: [gpt-4o-mini]}
    - {hash: %s, team_id: frozen}
    - {hash: %s, team_id: narrow}
    - {hash: %s, user_id: alice}
    - {hash: %s, rpm_limit: 1}
    - {hash: %s, model_limits: {gpt-4o-mini: {rpm_limit: 1}}}
    - {hash: %s, tpm_limit: 10}
    - {hash: %s, max_budget: 0.001, budget_duration: 1d}
    - {hash: %s, max_budget: 0.001}
    - {hash: %s, max_budget: 0.000001, budget_duration: 1d}
    - {hash: %s, max_budget: 10, budget_duration: 1d}
  teams:
    - {id: frozen, blocked: true}
    - {id: narrow, models: [gpt-4o-mini]}
  users:
    - {id: alice, models: [gpt-4o-mini]}
`, keys["open"].hash, keys["blocked"].hash, keys["expired"].hash, keys["models"].hash, keys["teamBlocked"].hash,
		keys["teamModels"].hash, keys["userModels"].hash, keys["rpm"].hash, keys["modelRPM"].hash, keys["tpm"].hash,
		keys["budget"].hash, keys["forever"].hash, keys["tinyBudget"].hash, keys["unpriced"].hash)
	s, logs := refusalServer(t, cfg)
	c := serveTest(t, s)

	chat := func(model, extra string) string {
		return `{"model":"` + model + `",` + extra + `"messages":[{"role":"user","content":"hi"}]}`
	}
	// 1000 output tokens of gpt-4o-mini cost $0.0006: one fits a $0.001
	// budget, two do not.
	const half = `"max_tokens":1000,`
	tests := []struct {
		name       string
		key        string // keys entry; "" sends none
		rawKey     string // sent as is instead
		path       string // default /v1/chat/completions
		body       string
		prime      int  // admitted requests sent first, held open
		beforeAuth bool // refused while parsing, before the key is read
		wantStatus int
		wantRule   errs.Rule // "" for no refusal
		wantCode   string
	}{
		{name: "missing key", body: chat("gpt-4o-mini", ""), wantStatus: 401, wantRule: errs.RuleKeyMissing, wantCode: "invalid_api_key"},
		{name: "unknown key", rawKey: newTestKey(t).secret.Reveal(), body: chat("gpt-4o-mini", ""), wantStatus: 401, wantRule: errs.RuleKeyUnknown, wantCode: "invalid_api_key"},
		{name: "malformed key", rawKey: "sk-not-weir", body: chat("gpt-4o-mini", ""), wantStatus: 401, wantRule: errs.RuleKeyUnknown, wantCode: "invalid_api_key"},
		{name: "blocked key", key: "blocked", body: chat("gpt-4o-mini", ""), wantStatus: 403, wantRule: errs.RuleKeyBlocked, wantCode: "forbidden"},
		{name: "expired key", key: "expired", body: chat("gpt-4o-mini", ""), wantStatus: 403, wantRule: errs.RuleKeyExpired, wantCode: "forbidden"},
		{name: "model not allowed for key", key: "models", body: chat("openai/gpt-4o", ""), wantStatus: 403, wantRule: errs.RuleKeyModelNotAllowed, wantCode: "forbidden"},
		{name: "blocked team", key: "teamBlocked", body: chat("gpt-4o-mini", ""), wantStatus: 403, wantRule: errs.RuleTeamBlocked, wantCode: "forbidden"},
		{name: "model not allowed for team", key: "teamModels", body: chat("openai/gpt-4o", ""), wantStatus: 403, wantRule: errs.RuleTeamModelNotAllowed, wantCode: "forbidden"},
		{name: "model not allowed for user", key: "userModels", body: chat("openai/gpt-4o", ""), wantStatus: 403, wantRule: errs.RuleUserModelNotAllowed, wantCode: "forbidden"},
		{name: "key rpm", key: "rpm", body: chat("gpt-4o-mini", ""), prime: 1, wantStatus: 429, wantRule: "key.rpm", wantCode: "rate_limit_exceeded"},
		{name: "key per-model rpm", key: "modelRPM", body: chat("gpt-4o-mini", ""), prime: 1, wantStatus: 429, wantRule: "key.model_rpm", wantCode: "rate_limit_exceeded"},
		{name: "request over the key tpm", key: "tpm", body: chat("gpt-4o-mini", `"max_tokens":100,`), wantStatus: 400, wantRule: "key.tpm", wantCode: "request_exceeds_limit"},
		{name: "key budget reached", key: "budget", body: chat("gpt-4o-mini", half), prime: 1, wantStatus: 429, wantRule: "key.budget", wantCode: "budget_exceeded"},
		{name: "key budget that never resets", key: "forever", body: chat("gpt-4o-mini", half), prime: 1, wantStatus: 402, wantRule: "key.budget", wantCode: "budget_exceeded"},
		{name: "request over the key budget", key: "tinyBudget", body: chat("gpt-4o-mini", ""), wantStatus: 400, wantRule: "key.budget", wantCode: "request_exceeds_limit"},
		{name: "unpriced model on a budget", key: "unpriced", body: chat("openai/no-such-priced-model", ""), wantStatus: 403, wantRule: errs.RuleModelUnpriced, wantCode: "model_not_priced"},
		{name: "context length", key: "open", body: chat("small", `"max_tokens":200,`), wantStatus: 400, wantRule: errs.RuleModelContextLength, wantCode: "context_length_exceeded"},
		{name: "duplicate key", key: "open", body: `{"model":"gpt-4o-mini","model":"x","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantRule: errs.RuleRequestDuplicateKey, wantCode: "invalid_request", beforeAuth: true},
		{name: "reply limit", key: "open", body: chat("gpt-4o-mini", `"max_tokens":100000000,`), wantStatus: 400, wantRule: errs.RuleRequestReplyLimit, wantCode: "invalid_request", beforeAuth: true},
		{name: "anthropic ingress, blocked key", key: "blocked", path: "/v1/messages", body: `{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 403, wantRule: errs.RuleKeyBlocked},
		{name: "malformed JSON is no refusal", key: "open", body: `{"model":`, wantStatus: 400, wantCode: "invalid_json"},
		{name: "unknown model is no refusal", key: "open", body: chat("nope", ""), wantStatus: 404, wantCode: "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.rawKey
			if tt.key != "" {
				secret = keys[tt.key].secret.Reveal()
			}
			hdr := map[string]string{}
			if secret != "" {
				hdr["authorization"] = "Bearer " + secret
			}
			path := cmp.Or(tt.path, "/v1/chat/completions")
			for range tt.prime {
				st := openStream(t, c, config.FilterLevelRouter)
				if resp := roundTripRequest(t, st, path, tt.body, hdr); resp.GetRequestBody() == nil {
					t.Fatalf("priming request not admitted: %v", resp)
				}
			}
			counter := s.metrics.RefusalsCounter(tt.wantStatus, cmpRule(tt.wantRule))
			before := testutil.ToFloat64(counter)
			logs.Reset()

			resp := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), path, tt.body, hdr)
			ir := resp.GetImmediateResponse()
			if ir == nil {
				t.Fatalf("not refused: %v", resp)
			}
			if got := int(ir.GetStatus().GetCode()); got != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", got, tt.wantStatus, ir.GetBody())
			}
			msg := gjson.GetBytes(ir.GetBody(), "error.message").Str
			if tt.wantCode != "" {
				if got := gjson.GetBytes(ir.GetBody(), "error.code").Str; got != tt.wantCode {
					t.Errorf("code %q, want %q: %s", got, tt.wantCode, ir.GetBody())
				}
			}
			if secret != "" && strings.Contains(string(ir.GetBody())+logs.String(), secret) {
				t.Error("the key appears in the body or the log")
			}
			header, hasHeader := mutated(ir.GetHeaders())[errs.HeaderRefusalRule]
			lines := refusedLines(t, logs)
			after := testutil.ToFloat64(counter)
			if tt.wantRule == "" {
				if hasHeader {
					t.Errorf("%s: %q on a non-refusal", errs.HeaderRefusalRule, header)
				}
				if len(lines) != 0 {
					t.Errorf("refused lines on a non-refusal: %v", lines)
				}
				if strings.Contains(msg, "[rule ") {
					t.Errorf("message %q names a rule", msg)
				}
				return
			}
			if header != string(tt.wantRule) {
				t.Errorf("%s = %q, want %q", errs.HeaderRefusalRule, header, tt.wantRule)
			}
			if !strings.HasSuffix(msg, "[rule "+string(tt.wantRule)+"]") {
				t.Errorf("message %q does not name rule %s", msg, tt.wantRule)
			}
			if after-before != 1 {
				t.Errorf("weir_admission_refusals_total{status=%d,rule=%s} rose by %v, want 1", tt.wantStatus, tt.wantRule, after-before)
			}
			if len(lines) != 1 {
				t.Fatalf("%d refused lines, want 1: %s", len(lines), logs)
			}
			l := lines[0]
			if l["level"] != "INFO" || l["rule"] != string(tt.wantRule) || l["status"] != float64(tt.wantStatus) || l["request_id"] != "req-1" {
				t.Errorf("log line %v", l)
			}
			wantKey := ""
			if tt.key != "" && !tt.beforeAuth {
				wantKey = keys[tt.key].secret.Hash().Short()
			}
			if l["key"] != wantKey {
				t.Errorf("log key %q, want %q", l["key"], wantKey)
			}
		})
	}
}

func cmpRule(r errs.Rule) errs.Rule {
	if r == "" {
		return errs.RuleOther
	}
	return r
}

// TestRefusalStoreUnavailable: a limits store that cannot be reached,
// failing closed, refuses with 503 and rule store.unavailable. The
// address refuses connections at once, so nothing waits.
func TestRefusalStoreUnavailable(t *testing.T) {
	k := newTestKey(t)
	s, logs := refusalServer(t, refusalBackends+fmt.Sprintf(`
limits: {store: redis, redis: {addr: "127.0.0.1:1"}, fail_mode: closed}
auth:
  keys:
    - {hash: %s, rpm_limit: 10}
`, k.hash))
	c := serveTest(t, s)
	counter := s.metrics.RefusalsCounter(503, errs.RuleStoreUnavailable)
	resp := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/chat/completions",
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"authorization": "Bearer " + k.secret.Reveal()})
	ir := resp.GetImmediateResponse()
	if got := ir.GetStatus().GetCode(); got != 503 {
		t.Fatalf("status %d: %s", got, ir.GetBody())
	}
	if got := mutated(ir.GetHeaders())[errs.HeaderRefusalRule]; got != string(errs.RuleStoreUnavailable) {
		t.Errorf("rule header %q", got)
	}
	if msg := gjson.GetBytes(ir.GetBody(), "error.message").Str; !strings.HasSuffix(msg, "[rule store.unavailable]") {
		t.Errorf("message %q", msg)
	}
	if got := testutil.ToFloat64(counter); got != 1 {
		t.Errorf("refusals{503, store.unavailable} = %v", got)
	}
	if lines := refusedLines(t, logs); len(lines) != 1 || lines[0]["rule"] != "store.unavailable" {
		t.Errorf("refused lines %v", lines)
	}
}
