package spendstatus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/spendstatus"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
	"github.com/weir-ai/weir/extproc/limits/redisstore"
	"github.com/weir-ai/weir/extproc/tokens"
	"github.com/weir-ai/weir/test/redistest"
)

// TestReadsWhatTheGateReserves: a request the extproc's gate admits for
// a key with limits_id "vk-uid" moves the counter the reader reads for
// that id, and only that one, so status shows the spend the gateway
// enforces. A reader that named the counter differently (by hash, by
// another period start) would read 0.
func TestReadsWhatTheGateReserves(t *testing.T) {
	ctx := context.Background()
	clock := limitstest.NewClock(limitstest.T0)
	rc := redistest.Start(t).Client()
	t.Cleanup(func() { rc.Close() })
	lim := &config.Limits{TimeZone: "Europe/Berlin"}
	auth := &config.Auth{Mode: "keys", Keys: []config.KeyConfig{{
		Hash: strings.Repeat("a", 64), LimitsID: "vk-uid",
		LimitsConfig: config.LimitsConfig{MaxBudget: 10, BudgetDuration: "1mo"},
	}}}
	p, err := admission.Compile(auth, lim, []config.PriceOverride{{Model: "*", Input: 1000, Output: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	g := &admission.Gate{Store: redisstore.New(rc, redisstore.Options{Clock: clock.Func()}), Tokens: tokens.UpperBound{BytesPerToken: 1},
		Clock: clock.Func(), TTL: time.Hour}
	r, err := spendstatus.New(rc, lim, clock.Func())
	if err != nil {
		t.Fatal(err)
	}
	qs := []spendstatus.Query{
		{Scope: "key", ID: "vk-uid", MaxBudget: 10, Period: "1mo"},
		{Scope: "key", ID: "other-uid", MaxBudget: 10, Period: "1mo"},
		{Scope: "key", ID: "vk-uid", MaxBudget: 10, Period: "1d"}, // another period: another counter
		{Scope: "team", ID: "no-budget"},
	}
	read := func() []spendstatus.Result {
		t.Helper()
		res, err := r.Read(ctx, qs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	before := read()
	if before[0].Spend != 0 || !before[0].Tracked || before[3].Tracked {
		t.Fatalf("before: %+v", before)
	}
	if before[0].ResetsAt.IsZero() {
		t.Fatal("a monthly budget has no reset time")
	}
	tk := &admission.Ticket{Key: p.ConfigKeys[0]}
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":100}`)
	req := &admission.Request{ID: "req-1", Body: body, Model: "m", Provider: "openai", Upstream: "m", Completion: 100}
	g.Price(p, tk, "b", req)
	if err := g.Reserve(ctx, p, tk, req); err != nil {
		t.Fatal(err)
	}
	after := read()
	if after[0].Spend <= 0 {
		t.Fatalf("the reserved cost is not in the key's counter: %+v", after[0])
	}
	if after[1].Spend != 0 || after[2].Spend != 0 {
		t.Fatalf("other counters moved: %+v", after)
	}
	// Berlin's month starts at 23:00 UTC the day before.
	if h := after[0].ResetsAt.UTC().Hour(); h != 23 && h != 22 {
		t.Errorf("period ends at %s, want midnight in Europe/Berlin", after[0].ResetsAt.UTC())
	}
}
