package admission

import (
	"context"
	"math"
	"testing"

	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/pricing"
)

type byteCount struct{}

func (byteCount) Count(b []byte) (int, error) { return len(b), nil }

// TestReserveEstimateSaturates: the estimate is prompt + completion tokens
// and their cost; counts that would overflow int64 clamp at MaxInt64
// instead of wrapping negative (which would lower every counter).
func TestReserveEstimateSaturates(t *testing.T) {
	const maxCost = math.MaxInt64/1_000_000 + 1 // MaxInt64 pico-dollars, rounded up
	mini := pricing.Price{Input: 150_000, Output: 600_000}
	tests := []struct {
		name       string
		body       string
		completion int64
		price      pricing.Price
		tokens     int64
		cost       int64
	}{
		{"ordinary", "0123456789", 1000, mini, 1010, 602},             // 1.5 + 600 µ$
		{"default completion", "0123456789", 0, mini, 10 + 1024, 616}, // 1.5 + 614.4 µ$
		{"2^56 completion", "0123456789", 1 << 56, mini, 1<<56 + 10, maxCost},
		{"max completion", "0123456789", math.MaxInt64, mini, math.MaxInt64, maxCost},
		{"negative completion reserves nothing for it", "0123456789", -5, mini, 10, 2},
		{"free model", "0123456789", math.MaxInt64, pricing.Price{}, math.MaxInt64, 0},
	}
	for _, tt := range tests {
		p := &Policy{Global: &limits.Subject{Scope: "global"}, Completion: 1024}
		g := &Gate{Tokens: byteCount{}}
		tk := &Ticket{Price: tt.price}
		if err := g.Reserve(context.Background(), p, tk, &Request{ID: "r", Body: []byte(tt.body), Completion: tt.completion}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tk.Estimate.Tokens != tt.tokens || tk.Estimate.Cost != tt.cost {
			t.Errorf("%s: estimate %+v, want tokens %d cost %d", tt.name, tk.Estimate, tt.tokens, tt.cost)
		}
	}
}

// TestReserveCap: limits.max_reserve_tokens caps the completion part of
// the reservation; without it the full reply limit is reserved.
func TestReserveCap(t *testing.T) {
	mini := pricing.Price{Input: 150_000, Output: 600_000}
	tests := []struct {
		name         string
		cap          int64
		completion   int64
		tokens, cost int64
	}{
		{"no cap reserves max_tokens", 0, 100_000, 100_010, 60_002},
		{"cap below max_tokens", 1000, 100_000, 1010, 602},
		{"cap above max_tokens", 1_000_000, 100_000, 100_010, 60_002},
		{"cap applies to the default estimate", 100, 0, 110, 62},
		{"cap equal", 100_000, 100_000, 100_010, 60_002},
	}
	for _, tt := range tests {
		p := &Policy{Global: &limits.Subject{Scope: "global"}, Completion: 1024, MaxReserve: tt.cap}
		g := &Gate{Tokens: byteCount{}}
		tk := &Ticket{Price: mini}
		if err := g.Reserve(context.Background(), p, tk, &Request{ID: "r", Body: []byte("0123456789"), Completion: tt.completion}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tk.Estimate.Tokens != tt.tokens || tk.Estimate.Cost != tt.cost {
			t.Errorf("%s: estimate %+v, want tokens %d cost %d", tt.name, tk.Estimate, tt.tokens, tt.cost)
		}
	}
}

type modelCount struct{}

func (modelCount) Count(b []byte) (int, error) { return len(b), nil }
func (modelCount) CountFor(b []byte, provider, model string) int {
	return len(b) + len(provider+"/"+model)
}

// TestReserveModelEstimator: an estimator that knows backends is given
// the request's provider and upstream model.
func TestReserveModelEstimator(t *testing.T) {
	p := &Policy{Global: &limits.Subject{Scope: "global"}, Completion: 1}
	g := &Gate{Tokens: modelCount{}}
	tk := &Ticket{}
	if err := g.Reserve(context.Background(), p, tk, &Request{ID: "r", Body: []byte("0123456789"), Provider: "anthropic", Upstream: "claude"}); err != nil {
		t.Fatal(err)
	}
	if want := int64(10 + len("anthropic/claude")); tk.Prompt != want {
		t.Errorf("prompt %d, want %d", tk.Prompt, want)
	}
}
