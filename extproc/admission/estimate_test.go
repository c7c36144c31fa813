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
