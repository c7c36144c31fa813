package extproc

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/tokens"
)

// countingTokenizer replaces the ContextWindow stage's BPE count in s's
// pipeline, in place (the stage order stays Default's), and returns the
// number of counts made.
func countingTokenizer(t *testing.T, s *Server) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	for i, st := range s.pipeline {
		if _, ok := st.(pipeline.ContextWindow); ok {
			s.pipeline[i] = pipeline.ContextWindow{Tokenize: func(model string, body []byte) (int, error) {
				n.Add(1)
				return tokens.ForModel(model).Count(body)
			}}
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
	h := &routerStream{s: s, rt: s.Runtime(), start: s.now()}
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
		ir := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), anthropicCountTokens, body, bearer(k)).GetImmediateResponse()
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
