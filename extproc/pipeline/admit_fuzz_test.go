package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/pricing"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/route"
	"github.com/weir-ai/weir/extproc/runtime"
)

// byteCount bounds prompt tokens by body bytes, as the cheap estimator does.
type byteCount struct{}

func (byteCount) Count(b []byte) (int, error) { return len(b), nil }

// admitted runs Parse, then Admit on a policy whose global subject has no
// limits (so nothing is stored), and returns the estimate Admit priced.
func admitted(t *testing.T, ep provider.Endpoint, field, limit, prompt string, price pricing.Price) (limits.Estimate, error) {
	t.Helper()
	q := string(jsonw.AppendString(nil, prompt))
	body := `{"model":"gpt-4o-mini","input":` + q + `,"prompt":"p","messages":[{"role":"user","content":` + q + `}],"` + field + `":` + limit + `}`
	p := &admission.Policy{Global: &limits.Subject{Scope: "global"}, Completion: config.DefaultCompletionEstimate}
	g := &admission.Gate{Tokens: byteCount{}, Store: limits.NewMemory(nil)}
	r := &Request{
		Runtime:  &runtime.Runtime{MaxBody: 1 << 20, Policy: p},
		Endpoint: ep,
		Body:     []byte(body),
		Target:   route.Target{Model: &config.Model{Name: "gpt-4o-mini"}, UpstreamModel: "gpt-4o-mini"},
		Backend:  &runtime.Backend{Config: &config.Backend{Name: "oa", Provider: "openai"}},
	}
	for _, s := range []RequestStage{Parse{}, ContextWindow{}} {
		if err := s.Request(context.Background(), r); err != nil {
			return limits.Estimate{}, err
		}
	}
	// Admit with the fuzzed price: Gate.Price would look up the table.
	ar := &admission.Request{ID: "id", Body: r.Body, Completion: r.MaxOutput, Model: r.Model}
	tk := &r.Ticket
	tk.Price = price
	if err := g.Reserve(context.Background(), p, tk, ar); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	return tk.Estimate, nil
}

// FuzzAdmissionEstimate: whatever a client puts in a reply-limit field, the
// request is refused with a 400 or admitted with an estimate and a cost
// that are non-negative and never shrink as the limit grows.
func FuzzAdmissionEstimate(f *testing.F) {
	f.Add(uint8(0), int64(1<<56), int64(1), "hello", int64(600_000))
	f.Add(uint8(1), int64(math.MaxInt64), int64(2), "hi", int64(10_000_000_000))
	f.Add(uint8(2), int64(1<<24), int64(1), "", int64(15_000_000))
	f.Add(uint8(3), int64(20000), int64(100), "x", int64(600_000))
	f.Add(uint8(0), int64(1<<20), int64(1<<20), "x", int64(math.MaxInt64/(1<<20)))
	f.Fuzz(func(t *testing.T, sel uint8, n, step int64, prompt string, out int64) {
		eps := []struct {
			ep    provider.Endpoint
			field string
		}{
			{provider.EndpointChat, "max_tokens"},
			{provider.EndpointChat, "max_completion_tokens"},
			{provider.EndpointResponses, "max_output_tokens"},
			{provider.EndpointCompletions, "max_tokens"},
		}
		e := eps[int(sel)%len(eps)]
		// Any price, even beyond what config accepts ($10,000 per 1M
		// tokens): costs saturate rather than wrap.
		out = max(out, 0)
		price := pricing.Price{Input: out / 4, Output: out}
		est := func(v string) (limits.Estimate, bool) {
			got, err := admitted(t, e.ep, e.field, v, prompt, price)
			if err != nil {
				if !errors.Is(err, errs.ErrInvalidRequest) {
					t.Fatalf("%s %s: err = %v, want a 400", e.field, v, err)
				}
				return got, false
			}
			if got.Tokens < 0 || got.Cost < 0 {
				t.Fatalf("%s %s: negative estimate %+v", e.field, v, got)
			}
			return got, true
		}
		a, okA := est(strconv.FormatInt(n, 10))
		if n > MaxOutputTokens && okA {
			t.Fatalf("%s %d above the ceiling was admitted", e.field, n)
		}
		// Also as a float spelling, which gjson's Int would not convert.
		est(fmt.Sprintf("%g", float64(n)))
		if n < 1 || step < 1 {
			return
		}
		m := n + min(step, math.MaxInt64-n)
		b, okB := est(strconv.FormatInt(m, 10))
		if okA && okB && (b.Tokens < a.Tokens || b.Cost < a.Cost) {
			t.Fatalf("%s: estimate for %d (%+v) is below that for %d (%+v)", e.field, m, b, n, a)
		}
		if okA && okB && b.Tokens-a.Tokens != m-n {
			t.Fatalf("%s: tokens grew by %d for %d more", e.field, b.Tokens-a.Tokens, m-n)
		}
	})
}
