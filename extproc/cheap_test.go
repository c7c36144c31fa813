package extproc

import (
	"strings"

	"fmt"
	"sync/atomic"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/tokens"
)

// countingTokenizer replaces the ContextWindow stage's BPE count in s's
// pipeline, in place (the stage order stays [Server.Stages]'), and returns the
// number of counts made.
func countingTokenizer(t *testing.T, s *Server) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	stages := s.Stages()
	for i, st := range stages {
		if _, ok := st.(pipeline.ContextWindow); ok {
			stages[i] = pipeline.ContextWindow{Tokenize: func(model string, body []byte) (int, error) {
				n.Add(1)
				return tokens.ForModel(model).Count(body)
			}}
			s.pipeline = pipeline.New(stages...)
			return &n
		}
	}
	t.Fatal("no ContextWindow stage in the pipeline")
	return nil
}

// TestContextWindowAfterLimits: a key already at its RPM or parallel limit
// is refused before any BPE count of its body; a request the context check
// refuses after admission frees its parallel slot.
func TestContextWindowAfterLimits(t *testing.T) {
	rpm, par := newTestKey(t), newTestKey(t)
	s, _ := refusalServer(t, refusalBackends+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, rpm_limit: 1}
    - {hash: %s, max_parallel_requests: 1}
`, rpm.hash, par.hash))
	counts := countingTokenizer(t, s)
	c := serveTest(t, s)
	small := `{"model":"small","messages":[{"role":"user","content":"hi"}]}`
	// Longer than the 100-token window in bytes, so only BPE can tell
	// whether it fits (it does: about 60 tokens).
	long := `{"model":"small","messages":[{"role":"user","content":"` + repeatWords("hi", 60) + `"}]}`
	// Over the window in tokens too.
	huge := `{"model":"small","messages":[{"role":"user","content":"` + repeatWords("hi", 300) + `"}]}`
	bearer := func(k testKey) map[string]string {
		return map[string]string{"authorization": "Bearer " + k.secret.Reveal()}
	}

	// The RPM key spends its one request, then sends a body that would
	// need counting.
	if resp := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/chat/completions", small, bearer(rpm)); resp.GetRequestBody() == nil {
		t.Fatalf("first request not admitted: %v", resp)
	}
	ir := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/chat/completions", long, bearer(rpm)).GetImmediateResponse()
	if ir.GetStatus().GetCode() != 429 || ir.GetHeaders() == nil || mutated(ir.GetHeaders())["retry-after"] == "" {
		t.Fatalf("at the rpm limit: %v", ir)
	}
	if got := counts.Load(); got != 0 {
		t.Errorf("BPE counted %d bodies for a key at its rpm limit, want 0", got)
	}

	// The parallel key: a request refused for its context length after
	// admission releases its slot at once, so the next request is served.
	h := &routerStream{s: s, rt: s.Runtime()}
	h.req.Start = s.now()
	resp := handleRequest(t.Context(), h, "/v1/chat/completions", huge, bearer(par))
	if code := gjson.GetBytes(resp.GetImmediateResponse().GetBody(), "error.code").Str; code != "context_length_exceeded" {
		t.Fatalf("huge request: %v", resp)
	}
	if got := counts.Load(); got != 1 {
		t.Errorf("BPE counted %d bodies, want 1", got)
	}
	held := openStream(t, c, config.FilterLevelRouter)
	if resp := roundTripRequest(t, held, "/v1/chat/completions", long, bearer(par)); resp.GetRequestBody() == nil {
		t.Fatalf("request after a context refusal not admitted (its parallel slot leaked): %v", resp)
	}
	// That request holds the key's only slot: the next is refused
	// without counting.
	before := counts.Load()
	ir = roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/chat/completions", long, bearer(par)).GetImmediateResponse()
	if ir.GetStatus().GetCode() != 429 {
		t.Fatalf("at the parallel limit: %v", ir)
	}
	if got := counts.Load() - before; got != 0 {
		t.Errorf("BPE counted %d bodies for a key at its parallel limit, want 0", got)
	}
}

func repeatWords(w string, n int) string {
	b := make([]byte, 0, n*(len(w)+1))
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, w...)
	}
	return string(b)
}

// TestCountTokensIsLimited: count_tokens takes a request slot on the
// key's RPM and parallel counters (no tokens, no cost), is refused with
// 429 and Retry-After like any request, and authorises the body's one
// model (a duplicate is a 400).
func TestCountTokensIsLimited(t *testing.T) {
	rpm, par, narrow, broke := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	s, _ := refusalServer(t, refusalBackends+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, rpm_limit: 2}
    - {hash: %s, max_parallel_requests: 1}
    - {hash: %s, models: [gpt-4o-mini]}
    - {hash: %s, max_budget: 0.0000001, tpm_limit: 1}
`, rpm.hash, par.hash, narrow.hash, broke.hash))
	c := serveTest(t, s)
	bearer := func(k testKey) map[string]string {
		return map[string]string{"authorization": "Bearer " + k.secret.Reveal()}
	}
	count := func(k testKey, body string) (int, []byte, map[string]string) {
		t.Helper()
		ir := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/messages/count_tokens", body, bearer(k)).GetImmediateResponse()
		if ir == nil {
			t.Fatal("count_tokens was not answered by Weir")
		}
		return int(ir.GetStatus().GetCode()), ir.GetBody(), mutated(ir.GetHeaders())
	}
	body := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	}

	// Two fit the RPM of 2; the third is refused, and so is a chat
	// request, which shares the counter.
	for i := range 2 {
		if st, b, _ := count(rpm, body("gpt-4o-mini")); st != 200 || gjson.GetBytes(b, "input_tokens").Int() == 0 {
			t.Fatalf("count %d: %d %s", i, st, b)
		}
	}
	st, b, h := count(rpm, body("gpt-4o-mini"))
	if st != 429 || h["retry-after"] == "" || gjson.GetBytes(b, "error.type").Str != "rate_limit_error" {
		t.Errorf("third count over rpm 2: %d %v %s", st, h, b)
	}
	ir := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/chat/completions", body("gpt-4o-mini"), bearer(rpm)).GetImmediateResponse()
	if ir.GetStatus().GetCode() != 429 {
		t.Errorf("chat after two counts on rpm 2: %v", ir)
	}

	// A request in flight holds the parallel key's only slot.
	held := openStream(t, c, config.FilterLevelRouter)
	if resp := roundTripRequest(t, held, "/v1/chat/completions", body("gpt-4o-mini"), bearer(par)); resp.GetRequestBody() == nil {
		t.Fatalf("held request not admitted: %v", resp)
	}
	if st, b, h := count(par, body("gpt-4o-mini")); st != 429 || h["retry-after"] == "" {
		t.Errorf("count at the parallel limit: %d %v %s", st, h, b)
	}
	// Counting frees its own slot: on a free key, counts never pile up.
	for i := range 3 {
		if st, b, _ := count(narrow, body("gpt-4o-mini")); st != 200 {
			t.Fatalf("count %d on the narrow key: %d %s", i, st, b)
		}
	}

	// Counting uses no tokens and costs nothing: a budget or TPM too
	// small for any chat request does not refuse it.
	if st, b, _ := count(broke, body("gpt-4o-mini")); st != 200 {
		t.Errorf("count on a key with a tiny budget and tpm: %d %s", st, b)
	}

	// The model is the body's only one.
	tests := []struct {
		name, body string
		want       int
	}{
		{"allowed model", body("gpt-4o-mini"), 200},
		{"other model", body("claude"), 403},
		{"allowed model first", `{"model":"gpt-4o-mini","model":"claude","messages":[{"role":"user","content":"hi"}]}`, 400},
		{"allowed model last", `{"model":"claude","model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, 400},
	}
	for _, tt := range tests {
		if st, b, _ := count(narrow, tt.body); st != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, st, b, tt.want)
		}
	}
}

// TestModelsListPerKey: in keys mode GET /v1/models needs a key and lists
// exactly the names the key may send: config names and aliases its own,
// its team's and its user's model rules admit, its own aliases, and exact
// names of its own that route through a wildcard. /v1/models/{id} for any
// other name is a 404, as for a name that does not exist.
func TestModelsListPerKey(t *testing.T) {
	keys := map[string]testKey{}
	for _, n := range []string{"all", "mini", "aliased", "team", "user", "wild", "pattern", "blocked"} {
		keys[n] = newTestKey(t)
	}
	cfg := testConfig + fmt.Sprintf(`
auth:
  keys:
    - {hash: %s}
    - {hash: %s, models: [gpt-4o-mini]}
    - {hash: %s, models: [gpt-4o-mini], aliases: {fast: gpt-4o-mini, smart: claude, gone: nope}}
    - {hash: %s, team_id: t1}
    - {hash: %s, user_id: u1}
    - {hash: %s, models: [openai/gpt-4.1, claude]}
    - {hash: %s, models: ["openai/*"]}
    - {hash: %s, blocked: true}
  teams:
    - {id: t1, models: [claude]}
  users:
    - {id: u1, models: [gpt-4o-mini, mini]}
`, keys["all"].hash, keys["mini"].hash, keys["aliased"].hash, keys["team"].hash, keys["user"].hash,
		keys["wild"].hash, keys["pattern"].hash, keys["blocked"].hash)
	c, _ := newTestClientWith(t, cfg)
	get := func(path, key string) (int, []byte) {
		t.Helper()
		hdr := []string{":method", "GET", ":path", path}
		if key != "" {
			hdr = append(hdr, "authorization", "Bearer "+key)
		}
		st := openStream(t, c, config.FilterLevelRouter)
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(hdr...), EndOfStream: true},
		}})
		ir := resp.GetImmediateResponse()
		if ir == nil {
			t.Fatalf("GET %s not answered: %v", path, resp)
		}
		return int(ir.GetStatus().GetCode()), ir.GetBody()
	}
	ids := func(b []byte) string {
		var out []string
		for _, v := range gjson.GetBytes(b, "data.#.id").Array() {
			out = append(out, v.Str)
		}
		return strings.Join(out, ",")
	}

	list := []struct {
		key  string // "" sends none; "?" an unknown key
		want int
		ids  string // for 200
		code string // for errors
	}{
		{"", 401, "", "invalid_api_key"},
		{"?", 401, "", "invalid_api_key"},
		{"blocked", 403, "", "forbidden"},
		{"all", 200, "gpt-4o-mini,mini,claude", ""},
		// A config alias is a name of its own: a key limited to
		// gpt-4o-mini may not send "mini" (403), so it is not listed.
		{"mini", 200, "gpt-4o-mini", ""},
		{"aliased", 200, "gpt-4o-mini,fast", ""},
		{"team", 200, "claude", ""},
		{"user", 200, "gpt-4o-mini,mini", ""},
		{"wild", 200, "claude,openai/gpt-4.1", ""},
		{"pattern", 200, "", ""},
	}
	for _, tt := range list {
		secret := ""
		switch tt.key {
		case "":
		case "?":
			secret = newTestKey(t).secret.Reveal()
		default:
			secret = keys[tt.key].secret.Reveal()
		}
		st, b := get("/v1/models", secret)
		if st != tt.want {
			t.Errorf("key %q: status %d, want %d: %s", tt.key, st, tt.want, b)
			continue
		}
		if st != 200 {
			if got := gjson.GetBytes(b, "error.code").Str; got != tt.code {
				t.Errorf("key %q: code %q, want %q: %s", tt.key, got, tt.code, b)
			}
			continue
		}
		if got := ids(b); got != tt.ids || gjson.GetBytes(b, "object").Str != "list" {
			t.Errorf("key %q: ids %q, want %q: %s", tt.key, got, tt.ids, b)
		}
	}

	one := []struct {
		key, id string
		want    int
	}{
		{"", "claude", 401},
		{"mini", "gpt-4o-mini", 200},
		{"mini", "mini", 404},
		{"mini", "claude", 404},
		{"aliased", "fast", 200},
		{"aliased", "smart", 404}, // an alias of a model the key may not use
		{"aliased", "gone", 404},  // an alias of no model
		{"team", "gpt-4o-mini", 404},
		{"team", "claude", 200},
		{"wild", "openai/gpt-4.1", 200},
		{"wild", "openai/gpt-4o", 404},
		{"all", "openai/*", 404},
	}
	for _, tt := range one {
		secret := ""
		if tt.key != "" {
			secret = keys[tt.key].secret.Reveal()
		}
		st, b := get("/v1/models/"+tt.id, secret)
		if st != tt.want {
			t.Errorf("key %q, model %q: status %d, want %d: %s", tt.key, tt.id, st, tt.want, b)
			continue
		}
		switch {
		case st == 200 && gjson.GetBytes(b, "id").Str != tt.id:
			t.Errorf("key %q, model %q: body %s", tt.key, tt.id, b)
		case st == 404 && gjson.GetBytes(b, "error.code").Str != "model_not_found":
			t.Errorf("key %q, model %q: body %s", tt.key, tt.id, b)
		}
	}
}

// TestStoredResponsesOffByDefault: without stored_responses, a Responses
// request that names stored state is refused before it is routed;
// "conversation" is refused always, as Weir issues no conversation ids.
func TestStoredResponsesOffByDefault(t *testing.T) {
	c, _ := newTestClientWith(t, testConfig+`
  - name: stateful
    provider_model: gpt-4o-mini
    backends: [oai]
    stored_responses: true
responses: {id_secret: "0123456789abcdef0123456789abcdef"}
`)
	tests := []struct {
		name, body string
		want       int    // 0: routed
		code, text string // of the refusal
		rule       errs.Rule
		// store is the "store" value the provider gets when routed: a
		// model without stored_responses is always told not to store.
		store string
	}{
		{"no stored state", `{"model":"gpt-4o-mini","input":"hi"}`, 0, "", "", "", "false"},
		{"null previous_response_id", `{"model":"gpt-4o-mini","input":"hi","previous_response_id":null}`, 0, "", "", "", "false"},
		{"previous_response_id", `{"model":"gpt-4o-mini","input":"hi","previous_response_id":"resp_other_tenant"}`, 400, "invalid_request", "'previous_response_id' is not enabled", errs.RuleResponsesStoredState, ""},
		{"previous_response_id not a string", `{"model":"gpt-4o-mini","input":"hi","previous_response_id":7}`, 400, "invalid_request", "must be a string", "", ""},
		{"conversation", `{"model":"gpt-4o-mini","input":"hi","conversation":"conv_other_tenant"}`, 400, "invalid_request", "'conversation' is not supported", errs.RuleResponsesStoredState, ""},
		{"conversation object, model enabled", `{"model":"stateful","input":"hi","conversation":{"id":"conv_1"}}`, 400, "invalid_request", "'conversation' is not supported", errs.RuleResponsesStoredState, ""},
		{"item_reference", `{"model":"stateful","input":[{"role":"user","content":"hi"},{"type":"item_reference","id":"msg_other_tenant"}]}`, 400, "invalid_request", "'item_reference' input items are not supported", errs.RuleResponsesStoredState, ""},
		{"items passed back whole", `{"model":"gpt-4o-mini","input":[{"role":"user","content":"hi"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}]}]}`, 0, "", "", "", "false"},
		{"client asks to store, model not enabled", `{"model":"gpt-4o-mini","input":"hi","store":true}`, 0, "", "", "", "false"},
		{"client asks not to store", `{"model":"gpt-4o-mini","input":"hi","store":false}`, 0, "", "", "", "false"},
		{"model enabled: the client's choice", `{"model":"stateful","input":"hi"}`, 0, "", "", "", ""},
		{"model enabled, store true", `{"model":"stateful","input":"hi","store":true}`, 0, "", "", "", "true"},
		{"unsealed id, model enabled", `{"model":"stateful","input":"hi","previous_response_id":"resp_other_tenant"}`, 404, "previous_response_not_found", "resp_other_tenant", errs.RuleResponsesUnknownID, ""},
	}
	for _, tt := range tests {
		resp := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/responses", tt.body, nil)
		ir := resp.GetImmediateResponse()
		if tt.want == 0 {
			if resp.GetRequestBody() == nil {
				t.Errorf("%s: not routed: %v", tt.name, resp)
				continue
			}
			up := []byte(tt.body)
			if m := resp.GetRequestBody().GetResponse().GetBodyMutation().GetBody(); m != nil {
				up = m
			}
			if got := gjson.GetBytes(up, "store").Raw; got != tt.store {
				t.Errorf("%s: provider gets store %q, want %q: %s", tt.name, got, tt.store, up)
			}
			continue
		}
		if int(ir.GetStatus().GetCode()) != tt.want || gjson.GetBytes(ir.GetBody(), "error.code").Str != tt.code ||
			!strings.Contains(gjson.GetBytes(ir.GetBody(), "error.message").Str, tt.text) {
			t.Errorf("%s: got %v", tt.name, resp)
		}
		if got := mutated(ir.GetHeaders())[errs.HeaderRefusalRule]; got != string(tt.rule) {
			t.Errorf("%s: rule %q, want %q", tt.name, got, tt.rule)
		}
	}
}
