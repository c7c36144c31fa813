package limits_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/limits"
)

// BenchSubjects is a realistic request: key with per-model limits, team,
// org and global budget; 10 counters.
var BenchSubjects = []limits.Subject{
	{Scope: "key", ID: "0123456789ab", Limits: limits.Limits{MaxBudget: 1e6, BudgetDuration: budget.Month, RPM: 1e9, TPM: 1e12, MaxParallel: 1e6},
		Models: map[string]limits.Limits{"gpt-4o": {RPM: 1e9, TPM: 1e12}}},
	{Scope: "team", ID: "t1", Limits: limits.Limits{MaxBudget: 1e6, BudgetDuration: budget.Month, TPM: 1e12}},
	{Scope: "org", ID: "o1", Limits: limits.Limits{MaxBudget: 1e6, BudgetDuration: budget.Month}},
	{Scope: "global", Limits: limits.Limits{MaxBudget: 1e7, BudgetDuration: budget.Month}},
}

// BenchmarkMemoryReserveSettle is plan + reserve + settle: the limits work
// of one request on a single replica. The clock advances 1 ms per request:
// one key at 1000 requests/s keeps 60,000 entries in each sliding window,
// far busier than a real key, and expiry runs as in steady state.
func BenchmarkMemoryReserveSettle(b *testing.B) {
	var now atomicCounter
	clock := func() time.Time { return time.UnixMilli(1_700_000_000_000 + now.next()) }
	m := limits.NewMemory(clock)
	p := &limits.Planner{Clock: clock}
	ctx := context.Background()
	var buf []limits.Counter
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := strconv.Itoa(i)
		buf = p.Plan(buf[:0], BenchSubjects, "gpt-4o", limits.Estimate{Cost: 1000, Tokens: 500})
		r, err := m.Reserve(ctx, id, buf, time.Minute)
		if err != nil || !r.OK {
			b.Fatal(r, err)
		}
		if _, err := m.Settle(ctx, id, buf, limits.Usage{Cost: 900, Tokens: 400, Requests: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryReserveSettleParallel(b *testing.B) {
	var now atomicCounter
	clock := func() time.Time { return time.UnixMilli(1_700_000_000_000 + now.next()/2) }
	m := limits.NewMemory(clock)
	p := &limits.Planner{Clock: clock}
	ctx := context.Background()
	b.ReportAllocs()
	var n atomicCounter
	b.RunParallel(func(pb *testing.PB) {
		var buf []limits.Counter
		for pb.Next() {
			id := strconv.FormatInt(n.next(), 10)
			buf = p.Plan(buf[:0], BenchSubjects, "gpt-4o", limits.Estimate{Cost: 1000, Tokens: 500})
			if r, err := m.Reserve(ctx, id, buf, time.Minute); err != nil || !r.OK {
				b.Fatal(r, err)
			}
			if _, err := m.Settle(ctx, id, buf, limits.Usage{Cost: 900, Tokens: 400, Requests: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// nopStore answers every call at once, or fails every call: a primary
// whose own cost is nothing, so the benchmark shows the guard's.
type nopStore struct{ err error }

func (n nopStore) Reserve(context.Context, string, []limits.Counter, time.Duration) (limits.Result, error) {
	return limits.Result{OK: n.err == nil}, n.err
}

func (n nopStore) Settle(context.Context, string, []limits.Counter, limits.Usage) (bool, error) {
	return n.err == nil, n.err
}

// BenchmarkGuardBreaker is the breaker's cost on the request path, in
// parallel (requests in flight): closed (a healthy Redis; one atomic load
// per call) against no breaker, and open in fail_closed (an outage: the
// refusal without calling Redis, which otherwise waits out the client's
// timeout, 500 ms per try).
func BenchmarkGuardBreaker(b *testing.B) {
	cs := (&limits.Planner{}).Plan(nil, BenchSubjects, "gpt-4o", limits.Estimate{Cost: 1000, Tokens: 500})
	down := errors.New("down")
	for _, bc := range []struct {
		name    string
		primary limits.Store
		breaker *limits.Breaker
	}{
		{"no breaker", nopStore{}, nil},
		{"closed", nopStore{}, &limits.Breaker{}},
		{"open fail_closed", nopStore{err: down}, &limits.Breaker{Failures: 1, Probe: time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := &limits.Guard{Primary: bc.primary, Mode: limits.FailClosed, Breaker: bc.breaker, Log: slog.New(slog.DiscardHandler)}
			_, _ = g.Reserve(context.Background(), "warm", cs, time.Minute) // opens the failing one
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = g.Reserve(context.Background(), "id", cs, time.Minute)
				}
			})
		})
	}
}

// BenchmarkMemorySlidingRefusal is a refused reservation on a full RPM
// window of 600 and 60,000 settled entries: its Retry-After walk reads the
// oldest entry, not the window, so both cost the same.
func BenchmarkMemorySlidingRefusal(b *testing.B) {
	for _, n := range []int{600, 60_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var ms int64
			clock := func() time.Time { return time.UnixMilli(1_700_000_000_000 + ms) }
			m := limits.NewMemory(clock)
			p := &limits.Planner{Clock: clock}
			subj := []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: int64(n)}}}
			ctx := context.Background()
			cs := p.Plan(nil, subj, "", limits.Estimate{})
			for i := range n {
				if r, _ := m.Reserve(ctx, strconv.Itoa(i), cs, time.Minute); !r.OK {
					b.Fatal("window not filled")
				}
				if _, err := m.Settle(ctx, strconv.Itoa(i), cs, limits.Usage{Requests: 1}); err != nil {
					b.Fatal(err)
				}
			}
			ms = 30_000
			b.ReportAllocs()
			for b.Loop() {
				if r, _ := m.Reserve(ctx, "refused", cs, time.Minute); r.OK {
					b.Fatal("admitted past the limit")
				}
			}
		})
	}
}
