// Package limitstest is the test suite every [limits.Store] passes: the
// in-memory store and the Redis store run the same cases, so they cannot
// drift apart.
package limitstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
)

// Stores are two clients of one shared state: two replicas. For a
// single-replica store both are the same.
type Stores struct {
	A, B limits.Store
	// Get reads a counter directly from the shared state.
	Get func(ctx context.Context, c limits.Counter) (int64, error)
	// Records counts the reservation records the shared state holds.
	Records func(ctx context.Context) (int, error)
}

// Factory makes fresh, empty stores whose "now" is clock.
type Factory func(t *testing.T, clock budget.Clock) Stores

// Clock is a settable clock for tests.
type Clock struct{ ns atomic.Int64 }

// NewClock starts at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

func (c *Clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *Clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *Clock) Func() budget.Clock  { return c.Now }

// T0 is the suite's start time: a Wednesday, mid-month, mid-day in UTC.
var T0 = time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)

const ttl = time.Minute

// Run runs every case against stores made by f.
func Run(t *testing.T, f Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Stores, *Clock)
	}{
		{"budget refuses past limit", testBudget},
		{"all or nothing", testAllOrNothing},
		{"settle replaces estimate once", testSettle},
		{"settle above the reservation charges it all", testSettleAbove},
		{"release on failure", testRelease},
		{"vanished reservation expires", testExpiry},
		{"reused id never admits", testDuplicate},
		{"settled reservations are forgotten", testForgotten},
		{"a released entry leaves the sliding window", testSlidingRelease},
		{"reservation lifetime is per request", testLifetime},
		{"sliding window", testSliding},
		{"fixed rate window", testFixedRate},
		{"parallel gauge", testParallel},
		{"budget resets at local period start", testBudgetReset},
		{"idle budgets are forgotten after their last reservation", testIdle},
		{"per-model limits", testPerModel},
		{"refusals that waiting cannot clear", testPermanent},
		{"rate headers pick the tightest", testHeaders},
		{"exact under concurrency: budget", testExactBudget},
		{"exact under concurrency: tpm", testExactTPM},
		{"exact under concurrency: rpm", testExactRPM},
		{"exact under concurrency: parallel", testExactParallel},
		{"exact under concurrency: settle after failures releases", testExactRelease},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := NewClock(T0)
			c.fn(t, f(t, clock.Func()), clock)
		})
	}
}

var ctx = context.Background()

func get(t *testing.T, s Stores, c limits.Counter) int64 {
	t.Helper()
	v, err := s.Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func reserve(t *testing.T, st limits.Store, id string, cs []limits.Counter) limits.Result {
	t.Helper()
	r, err := st.Reserve(ctx, id, cs, ttl)
	if err != nil {
		t.Fatalf("reserve %s: %v", id, err)
	}
	return r
}

func settle(t *testing.T, st limits.Store, id string, cs []limits.Counter, u limits.Usage) bool {
	t.Helper()
	ok, err := st.Settle(ctx, id, cs, u)
	if err != nil {
		t.Fatalf("settle %s: %v", id, err)
	}
	return ok
}

func planner(clock *Clock) *limits.Planner {
	return &limits.Planner{Clock: clock.Func()}
}

func keySubject(l limits.Limits) []limits.Subject {
	return []limits.Subject{{Scope: "key", ID: "k1", Limits: l}}
}

func testBudget(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	subj := keySubject(limits.Limits{MaxBudget: 1, BudgetDuration: budget.Day})
	cs := p.Plan(nil, subj, "m", limits.Estimate{Cost: 400_000})
	for i, want := range []bool{true, true, false} {
		r := reserve(t, s.A, fmt.Sprint("r", i), cs)
		if r.OK != want {
			t.Fatalf("reservation %d: ok=%v, want %v", i, r.OK, want)
		}
		if !want {
			if r.Refused != 0 || r.RetryAfter != 12*time.Hour {
				t.Fatalf("refused=%d retry=%s, want 0 and 12h (to midnight UTC)", r.Refused, r.RetryAfter)
			}
			err := r.Err(cs)
			if !errors.Is(err, errs.ErrBudgetExceeded) || errs.Status(err) != 429 {
				t.Fatalf("err = %v", err)
			}
			if ra, _ := errs.RetryAfter(err); ra != 12*time.Hour {
				t.Fatalf("Retry-After %s", ra)
			}
			if r.States[0].Used != 800_000 {
				t.Fatalf("used before = %d", r.States[0].Used)
			}
		}
	}
	if v := get(t, s, cs[0]); v != 800_000 {
		t.Fatalf("counter = %d", v)
	}
	// A request whose estimate alone exceeds the budget is refused as such.
	big := p.Plan(nil, subj, "m", limits.Estimate{Cost: 2_000_000})
	r := reserve(t, s.B, "big", big)
	if r.OK {
		t.Fatal("estimate above the budget admitted")
	}
	err := r.Err(big)
	if _, ok := errs.RetryAfter(err); ok || errs.Status(err) != 400 || !errors.Is(err, errs.ErrExceedsLimit) ||
		err.Error() != "request exceeds a limit: budget exceeded: this request's estimate of $2.00 exceeds the key budget of $1.00" {
		t.Fatalf("estimate above the budget: %d %v", errs.Status(err), err)
	}
}

// testPermanent: a refusal that waiting cannot clear (a lifetime budget
// reached, an estimate above the limit) carries no Retry-After and a
// status SDKs do not retry, names the rule, and shows small budgets with
// their digits.
func testPermanent(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	tests := []struct {
		name       string
		limits     limits.Limits
		model      string
		est        limits.Estimate
		admitted   int // of 3 reservations
		wantStatus int
		wantRetry  bool
		wantMsg    string
	}{
		{"lifetime budget reached", limits.Limits{MaxBudget: 0.0001}, "", limits.Estimate{Cost: 40}, 2, 402, false,
			"payment required: budget exceeded: key budget of $0.0001 reached; it does not reset"},
		{"per-model lifetime budget", limits.Limits{}, "m", limits.Estimate{Cost: 60}, 2, 402, false,
			"payment required: budget exceeded: key budget for model m of $0.000123 reached; it does not reset"},
		{"daily budget reached: waits", limits.Limits{MaxBudget: 0.0001, BudgetDuration: budget.Day}, "", limits.Estimate{Cost: 40}, 2, 429, true,
			"budget exceeded: key budget of $0.0001 reached"},
		{"estimate above a daily budget", limits.Limits{MaxBudget: 0.0001, BudgetDuration: budget.Day}, "", limits.Estimate{Cost: 101}, 0, 400, false,
			"request exceeds a limit: budget exceeded: this request's estimate of $0.000101 exceeds the key budget of $0.0001"},
		{"estimate above the tpm", limits.Limits{TPM: 100}, "", limits.Estimate{Tokens: 101}, 0, 400, false,
			"request exceeds a limit: this request's estimate of 101 exceeds the key tpm of 100"},
		{"rpm reached: waits", limits.Limits{RPM: 2}, "", limits.Estimate{}, 2, 429, true,
			"rate limit exceeded: key rpm of 2 reached"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subj := []limits.Subject{{Scope: "key", ID: fmt.Sprint("perm", i), Limits: tc.limits,
				Models: map[string]limits.Limits{"m": {MaxBudget: 0.000123}}}}
			cs := p.Plan(nil, subj, tc.model, tc.est)
			var last limits.Result
			admitted := 0
			for j := range 3 {
				last = reserve(t, []limits.Store{s.A, s.B}[j%2], fmt.Sprint(tc.name, j), cs)
				if last.OK {
					admitted++
				}
			}
			if admitted != tc.admitted || last.OK {
				t.Fatalf("admitted %d of 3, want %d and the last refused", admitted, tc.admitted)
			}
			err := last.Err(cs)
			if got := errs.Status(err); got != tc.wantStatus {
				t.Errorf("status %d, want %d (%v)", got, tc.wantStatus, err)
			}
			if ra, ok := errs.RetryAfter(err); ok != tc.wantRetry || (ok && ra <= 0) {
				t.Errorf("Retry-After %v (%v), want %v", ra, ok, tc.wantRetry)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("message %q\nwant    %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

func testAllOrNothing(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	subj := []limits.Subject{
		{Scope: "key", ID: "k1", Limits: limits.Limits{MaxBudget: 10, TPM: 1000}},
		{Scope: "team", ID: "t1", Limits: limits.Limits{MaxBudget: 1}},
	}
	cs := p.Plan(nil, subj, "m", limits.Estimate{Cost: 600_000, Tokens: 100})
	if len(cs) != 3 {
		t.Fatalf("%d counters", len(cs))
	}
	if r := reserve(t, s.A, "a", cs); !r.OK {
		t.Fatal("first refused")
	}
	r := reserve(t, s.B, "b", cs)
	if r.OK || r.Refused != 2 || cs[2].Rule() != "team budget" {
		t.Fatalf("ok=%v refused=%d", r.OK, r.Refused)
	}
	if !errors.Is(r.Err(cs), errs.ErrBudgetExceeded) {
		t.Fatal(r.Err(cs))
	}
	// The key's counters did not move for the refused request.
	if v := get(t, s, cs[0]); v != 600_000 {
		t.Fatalf("key budget = %d", v)
	}
	if v := get(t, s, cs[1]); v != 100 {
		t.Fatalf("key tpm = %d", v)
	}
}

func testSettle(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: 1, TPM: 1000, RPM: 10, MaxParallel: 5}), "m", limits.Estimate{Cost: 500_000, Tokens: 300})
	reserve(t, s.A, "x", cs)
	if r := reserve(t, s.B, "x", cs); !r.Duplicate || r.OK {
		t.Fatalf("reused id not refused as a duplicate: %+v", r)
	}
	if v := get(t, s, cs[0]); v != 500_000 {
		t.Fatalf("duplicate charged: %d", v)
	}
	u := limits.Usage{Cost: 120_000, Tokens: 80, Requests: 1}
	if !settle(t, s.A, "x", cs, u) {
		t.Fatal("settle refused")
	}
	if settle(t, s.B, "x", cs, u) {
		t.Fatal("second settle applied")
	}
	want := []int64{120_000, 1, 80, 0}
	for i, c := range cs {
		if v := get(t, s, c); v != want[i] {
			t.Errorf("%s = %d, want %d", c.Rule(), v, want[i])
		}
	}
	if settle(t, s.A, "never-reserved", cs, u) {
		t.Fatal("settled an unknown id")
	}
}

// testSettleAbove: a capped reservation (limits.max_reserve_tokens) can
// settle above what it reserved, even past the limit; the counters carry
// the whole actual usage and the next request is refused.
func testSettleAbove(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: 1, TPM: 1000, RPM: 10, MaxParallel: 5}), "m", limits.Estimate{Cost: 100_000, Tokens: 100})
	reserve(t, s.A, "x", cs)
	if !settle(t, s.B, "x", cs, limits.Usage{Cost: 1_500_000, Tokens: 1500, Requests: 1}) {
		t.Fatal("settle refused")
	}
	want := []int64{1_500_000, 1, 1500, 0}
	for i, c := range cs {
		if v := get(t, s, c); v != want[i] {
			t.Errorf("%s = %d, want %d", c.Rule(), v, want[i])
		}
	}
	if r := reserve(t, s.A, "y", cs); r.OK {
		t.Fatal("admitted past an overshot budget")
	}
}

func testRelease(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: 1, TPM: 1000, RPM: 1, MaxParallel: 1}), "m", limits.Estimate{Cost: 1_000_000, Tokens: 1000})
	reserve(t, s.A, "fails", cs)
	if r := reserve(t, s.B, "waits", cs); r.OK {
		t.Fatal("admitted over every limit")
	}
	settle(t, s.A, "fails", cs, limits.Usage{})
	for _, c := range cs {
		if v := get(t, s, c); v != 0 {
			t.Errorf("%s = %d after release", c.Rule(), v)
		}
	}
	if r := reserve(t, s.B, "next", cs); !r.OK {
		t.Fatalf("refused after release by %d", r.Refused)
	}
}

func testExpiry(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: 10, MaxParallel: 1}), "m", limits.Estimate{Cost: 300_000})
	if _, err := s.A.Reserve(ctx, "gone", cs, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r := reserve(t, s.B, "blocked", cs); r.OK || r.Refused != 1 || r.RetryAfter != limits.GaugeRetry {
		t.Fatalf("parallel slot not held: %+v", r)
	}
	clock.Add(10 * time.Second)
	// The vanished request's slot is free; its estimate stays charged.
	if r := reserve(t, s.B, "after", cs); !r.OK {
		t.Fatalf("slot not freed at the deadline: %+v", r)
	}
	if v := get(t, s, cs[0]); v != 600_000 {
		t.Fatalf("budget = %d, want both estimates", v)
	}
	if settle(t, s.A, "gone", cs, limits.Usage{}) {
		t.Fatal("settled an expired reservation")
	}
	if v := get(t, s, cs[0]); v != 600_000 {
		t.Fatalf("late settle changed the budget: %d", v)
	}
}

func testSliding(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	subj := keySubject(limits.Limits{RPM: 3})
	plan := func() []limits.Counter { return p.Plan(nil, subj, "m", limits.Estimate{}) }
	for i := range 3 {
		if r := reserve(t, s.A, fmt.Sprint("a", i), plan()); !r.OK {
			t.Fatalf("%d refused", i)
		}
		clock.Add(10 * time.Second)
	}
	// Entries at 0s, 10s, 20s; now 30s.
	r := reserve(t, s.B, "b0", plan())
	if r.OK || r.RetryAfter != 30*time.Second {
		t.Fatalf("ok=%v retry=%s, want refusal for 30s", r.OK, r.RetryAfter)
	}
	h := r.RateHeaders(plan())
	if !h.Requests.Set || h.Requests.Remaining != 0 || h.Requests.Limit != 3 || h.Requests.Reset != 30*time.Second {
		t.Fatalf("headers %+v", h)
	}
	clock.Set(T0.Add(time.Minute - time.Millisecond))
	if r := reserve(t, s.B, "b1", plan()); r.OK || r.RetryAfter != time.Millisecond {
		t.Fatalf("admitted a millisecond early: %+v", r)
	}
	clock.Set(T0.Add(time.Minute))
	r = reserve(t, s.B, "b2", plan())
	if !r.OK || r.States[0].Used != 3 || r.States[0].Reset != 10*time.Second {
		t.Fatalf("not admitted once the first entry left: %+v", r)
	}
}

func testFixedRate(t *testing.T, s Stores, clock *Clock) {
	clock.Set(T0.Add(50 * time.Second))
	p := &limits.Planner{Clock: clock.Func(), RateWindow: limits.Fixed}
	subj := keySubject(limits.Limits{TPM: 100})
	cs := p.Plan(nil, subj, "m", limits.Estimate{Tokens: 60})
	reserve(t, s.A, "a", cs)
	r := reserve(t, s.B, "b", cs)
	if r.OK || r.RetryAfter != 10*time.Second {
		t.Fatalf("%+v", r)
	}
	clock.Set(T0.Add(time.Minute))
	if r := reserve(t, s.B, "c", p.Plan(nil, subj, "m", limits.Estimate{Tokens: 60})); !r.OK {
		t.Fatal("new minute refused")
	}
}

func testParallel(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxParallel: 2}), "m", limits.Estimate{})
	reserve(t, s.A, "1", cs)
	reserve(t, s.B, "2", cs)
	if r := reserve(t, s.A, "3", cs); r.OK {
		t.Fatal("third parallel admitted")
	}
	settle(t, s.B, "1", cs, limits.Usage{Requests: 1, Tokens: 5})
	if r := reserve(t, s.A, "3b", cs); !r.OK {
		t.Fatal("slot not freed by settle")
	}
}

func testBudgetReset(t *testing.T, s Stores, clock *Clock) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name       string
		loc        *time.Location
		period     budget.Period
		start      time.Time // when the budget is exhausted
		before, at time.Time // the last instant of the period, and the first of the next
	}{
		// US spring forward: a 23-hour day.
		{"ny day across dst", ny, budget.Day, time.Date(2026, 3, 8, 1, 0, 0, 0, ny), time.Date(2026, 3, 8, 23, 59, 59, 0, ny), time.Date(2026, 3, 9, 0, 0, 0, 0, ny)},
		// Berlin's month ends an hour before UTC's.
		{"berlin month", berlin, budget.Month, time.Date(2026, 3, 20, 0, 0, 0, 0, berlin), time.Date(2026, 3, 31, 23, 59, 59, 0, berlin), time.Date(2026, 4, 1, 0, 0, 0, 0, berlin)},
		{"ny week", ny, budget.Week, time.Date(2026, 10, 28, 0, 0, 0, 0, ny), time.Date(2026, 11, 1, 23, 59, 59, 0, ny), time.Date(2026, 11, 2, 0, 0, 0, 0, ny)},
		{"utc hour", time.UTC, budget.Hour, time.Date(2026, 1, 1, 10, 15, 0, 0, time.UTC), time.Date(2026, 1, 1, 10, 59, 59, 0, time.UTC), time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		clock.Set(tt.start)
		p := &limits.Planner{Clock: clock.Func(), Location: tt.loc}
		subj := []limits.Subject{{Scope: "key", ID: tt.name, Limits: limits.Limits{MaxBudget: 1, BudgetDuration: tt.period}}}
		est := limits.Estimate{Cost: 1_000_000}
		if r := reserve(t, s.A, tt.name+"1", p.Plan(nil, subj, "", est)); !r.OK {
			t.Fatalf("%s: first refused", tt.name)
		}
		clock.Set(tt.before)
		cs := p.Plan(nil, subj, "", est)
		r := reserve(t, s.B, tt.name+"2", cs)
		if r.OK || r.RetryAfter != time.Second {
			t.Fatalf("%s: before the reset ok=%v retry=%s, want refused for 1s", tt.name, r.OK, r.RetryAfter)
		}
		clock.Set(tt.at)
		if r := reserve(t, s.B, tt.name+"3", p.Plan(nil, subj, "", est)); !r.OK {
			t.Fatalf("%s: not reset at %s", tt.name, tt.at)
		}
	}
}

func testPerModel(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	subj := []limits.Subject{{Scope: "key", ID: "k1", Limits: limits.Limits{RPM: 100},
		Models: map[string]limits.Limits{"gpt-4o": {RPM: 1, MaxBudget: 5}}}}
	cs := p.Plan(nil, subj, "gpt-4o", limits.Estimate{Cost: 1})
	if len(cs) != 3 || cs[2].Rule() != "key rpm for model gpt-4o" {
		t.Fatalf("counters %+v", cs)
	}
	reserve(t, s.A, "1", cs)
	r := reserve(t, s.B, "2", cs)
	if r.OK || r.Refused != 2 {
		t.Fatalf("%+v", r)
	}
	if err := r.Err(cs); !errors.Is(err, errs.ErrRateLimited) {
		t.Fatal(err)
	}
	// Another model only meets the overall limit.
	if r := reserve(t, s.B, "3", p.Plan(nil, subj, "other", limits.Estimate{})); !r.OK {
		t.Fatal("other model refused")
	}
}

func testHeaders(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	subj := []limits.Subject{
		{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 10, TPM: 10_000}},
		{Scope: "team", ID: "t", Limits: limits.Limits{RPM: 5, TPM: 100_000}},
	}
	cs := p.Plan(nil, subj, "", limits.Estimate{Tokens: 1000})
	r := reserve(t, s.A, "1", cs)
	h := r.RateHeaders(cs)
	if h.Requests != (limits.Limit{Set: true, Limit: 5, Remaining: 4, Reset: time.Minute}) {
		t.Errorf("requests %+v", h.Requests)
	}
	if h.Tokens != (limits.Limit{Set: true, Limit: 10_000, Remaining: 9000, Reset: time.Minute}) {
		t.Errorf("tokens %+v", h.Tokens)
	}
}

// Concurrency is how many reservations race in the exactness cases.
const Concurrency = 1000

// race runs Concurrency reservations, alternating between the two stores,
// all released at once, and returns the ids admitted.
func race(t *testing.T, s Stores, prefix string, cs []limits.Counter) []string {
	t.Helper()
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		admitted []string
		failed   atomic.Int64
	)
	for i := range Concurrency {
		st := s.A
		if i%2 == 1 {
			st = s.B
		}
		id := fmt.Sprintf("%s-%d", prefix, i)
		wg.Go(func() {
			<-start
			r, err := st.Reserve(ctx, id, cs, ttl)
			if err != nil {
				failed.Add(1)
				return
			}
			if r.OK {
				mu.Lock()
				admitted = append(admitted, id)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d reservations failed with errors", n)
	}
	return admitted
}

const exactN = 37

func testExactBudget(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	const cost = 12_345 // micro-dollars per request
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: budget.USD(exactN * cost), BudgetDuration: budget.Month}), "m", limits.Estimate{Cost: cost})
	admitted := race(t, s, "budget", cs)
	if len(admitted) != exactN {
		t.Fatalf("admitted %d of %d with a budget of %d requests", len(admitted), Concurrency, exactN)
	}
	// Estimate equals actual: settling changes nothing, and spend is
	// exactly the budget.
	for i, id := range admitted {
		st := s.A
		if i%2 == 0 {
			st = s.B
		}
		settle(t, st, id, cs, limits.Usage{Cost: cost, Requests: 1})
	}
	if v := get(t, s, cs[0]); v != exactN*cost || v > cs[0].Limit {
		t.Fatalf("spend %d, limit %d", v, cs[0].Limit)
	}
	t.Logf("budget: %d admitted of %d, spend %d µ$ of %d", len(admitted), Concurrency, get(t, s, cs[0]), cs[0].Limit)
}

func testExactTPM(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	const tokens = 333
	cs := p.Plan(nil, keySubject(limits.Limits{TPM: exactN * tokens}), "m", limits.Estimate{Tokens: tokens})
	admitted := race(t, s, "tpm", cs)
	if len(admitted) != exactN {
		t.Fatalf("admitted %d, want %d", len(admitted), exactN)
	}
	if v := get(t, s, cs[0]); v != exactN*tokens {
		t.Fatalf("tokens %d", v)
	}
}

func testExactRPM(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{RPM: exactN}), "m", limits.Estimate{})
	if admitted := race(t, s, "rpm", cs); len(admitted) != exactN {
		t.Fatalf("admitted %d, want %d", len(admitted), exactN)
	}
}

func testExactParallel(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxParallel: exactN}), "m", limits.Estimate{})
	if admitted := race(t, s, "par", cs); len(admitted) != exactN {
		t.Fatalf("admitted %d, want %d", len(admitted), exactN)
	}
}

// testExactRelease fills a budget, fails a third of the admitted requests
// upstream (settle with zero usage), and races again: exactly the released
// amount is admitted the second time.
func testExactRelease(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	const cost = 1000
	subj := keySubject(limits.Limits{MaxBudget: budget.USD(exactN * cost), TPM: exactN * 10})
	cs := p.Plan(nil, subj, "m", limits.Estimate{Cost: cost, Tokens: 10})
	admitted := race(t, s, "first", cs)
	if len(admitted) != exactN {
		t.Fatalf("admitted %d", len(admitted))
	}
	released := 0
	for i, id := range admitted {
		u := limits.Usage{Cost: cost, Tokens: 10, Requests: 1}
		if i%3 == 0 {
			u = limits.Usage{} // upstream failed
			released++
		}
		settle(t, s.B, id, cs, u)
	}
	again := race(t, s, "second", cs)
	if len(again) != released {
		t.Fatalf("after releasing %d, admitted %d", released, len(again))
	}
	if v := get(t, s, cs[0]); v != exactN*cost {
		t.Fatalf("budget %d, want %d", v, exactN*cost)
	}
}

// testDuplicate: an id reserved and in flight is refused from either
// replica, adds nothing, and leaves the first reservation settleable. A
// duplicate never admits.
//
// Once settled, the id is forgotten (testForgotten): ids are Weir's own
// random ones, used for one request, so no caller reserves a settled id
// again, and remembering every settled id would cost memory per request.
func testDuplicate(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: 10, MaxParallel: 5}), "m", limits.Estimate{Cost: 100_000})
	if r := reserve(t, s.A, "id", cs); !r.OK {
		t.Fatalf("first reservation refused: %+v", r)
	}
	clock.Add(ttl / 2)
	for _, st := range []limits.Store{s.A, s.B} {
		r := reserve(t, st, "id", cs)
		if r.OK || !r.Duplicate || len(r.States) != 0 || r.Err(cs) != nil {
			t.Fatalf("reused id answered %+v, want a refused duplicate", r)
		}
	}
	if !settle(t, s.A, "id", cs, limits.Usage{Cost: 50_000, Requests: 1}) {
		t.Fatal("settle refused")
	}
	// Only the first reservation, settled, is counted.
	want := []int64{50_000, 0}
	for i, c := range cs {
		if v := get(t, s, c); v != want[i] {
			t.Errorf("%s = %d, want %d", c.Rule(), v, want[i])
		}
	}
}

// testForgotten: the store keeps a record per reservation in flight only.
// Settling deletes it (a second settle is still a no-op), so memory follows
// the requests in flight, not the requests served.
func testForgotten(t *testing.T, s Stores, clock *Clock) {
	if s.Records == nil {
		t.Skip("the store cannot count its records")
	}
	p := planner(clock)
	cs := p.Plan(nil, keySubject(limits.Limits{MaxBudget: 100, BudgetDuration: budget.Day, TPM: 1_000_000, RPM: 1000, MaxParallel: 100}), "m",
		limits.Estimate{Cost: 1000, Tokens: 100})
	tests := []struct {
		name      string
		reserve   int // new reservations
		settle    int // of them, settled (every third released)
		inFlight  int // records held after
		resettled bool
	}{
		{"all settled", 40, 40, 0, false},
		{"some in flight", 20, 12, 8, false},
		{"second settles change nothing", 0, 0, 8, true},
	}
	n := 0
	var settled []string
	for _, tc := range tests {
		ids := make([]string, tc.reserve)
		for i := range ids {
			ids[i] = fmt.Sprint("f", n)
			n++
			if r := reserve(t, s.A, ids[i], cs); !r.OK {
				t.Fatalf("%s: %s refused: %+v", tc.name, ids[i], r)
			}
		}
		for i, id := range ids[:tc.settle] {
			u := limits.Usage{Cost: 900, Tokens: 90, Requests: 1}
			if i%3 == 0 {
				u = limits.Usage{}
			}
			if !settle(t, s.B, id, cs, u) {
				t.Fatalf("%s: settle %s refused", tc.name, id)
			}
			settled = append(settled, id)
		}
		if tc.resettled {
			for _, id := range settled {
				if settle(t, s.A, id, cs, limits.Usage{Cost: 1}) {
					t.Fatalf("%s: %s settled twice", tc.name, id)
				}
			}
		}
		got, err := s.Records(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.inFlight {
			t.Fatalf("%s: %d records held, want %d (the reservations in flight)", tc.name, got, tc.inFlight)
		}
	}
}

// testSlidingRelease: a request released at settle (the upstream failed)
// leaves the sliding window at once: it no longer counts, nor sets the
// window's reset as its oldest entry.
func testSlidingRelease(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	plan := func() []limits.Counter { return p.Plan(nil, keySubject(limits.Limits{RPM: 3}), "m", limits.Estimate{}) }
	tests := []struct {
		at      time.Duration // from T0
		id      string
		release string // settled with no usage before reserving id
		used    int64
		reset   time.Duration
	}{
		{0, "a0", "", 1, time.Minute},
		{10 * time.Second, "a1", "", 2, 50 * time.Second},
		// a0 released: a1 at 10s is now the oldest entry.
		{20 * time.Second, "a2", "a0", 2, 50 * time.Second},
		// The last entry released: a1 stays the oldest.
		{30 * time.Second, "a3", "a2", 2, 40 * time.Second},
	}
	for _, tc := range tests {
		clock.Set(T0.Add(tc.at))
		if tc.release != "" && !settle(t, s.A, tc.release, plan(), limits.Usage{}) {
			t.Fatalf("release of %s refused", tc.release)
		}
		r := reserve(t, s.B, tc.id, plan())
		if !r.OK || r.States[0].Used != tc.used || r.States[0].Reset != tc.reset {
			t.Fatalf("%s at %s: ok=%v used=%d reset=%s, want used %d reset %s", tc.id, tc.at, r.OK, r.States[0].Used, r.States[0].Reset, tc.used, tc.reset)
		}
	}
}

// testLifetime: a reservation keeps its own ttl. One made with a long
// lifetime (a backend timeout of 30m) still holds its parallel slot after
// the default six minutes, even when shorter reservations come and go on
// the same gauge, and its settle is accepted at 20 minutes.
func testLifetime(t *testing.T, s Stores, clock *Clock) {
	p := planner(clock)
	const long, short = 31 * time.Minute, 6 * time.Minute
	plan := func() []limits.Counter {
		return p.Plan(nil, keySubject(limits.Limits{MaxBudget: 10, MaxParallel: 2}), "m", limits.Estimate{Cost: 300_000})
	}
	cs := plan()
	if r, err := s.A.Reserve(ctx, "long", cs, long); err != nil || !r.OK {
		t.Fatalf("long reservation: %+v %v", r, err)
	}
	if r, err := s.B.Reserve(ctx, "short", plan(), short); err != nil || !r.OK {
		t.Fatalf("short reservation: %+v %v", r, err)
	}
	for _, step := range []struct {
		after    time.Duration // since the start
		parallel int64         // slots held
	}{
		{time.Minute, 2},
		{short, 1}, // the short one vanished; the long one holds on
		{short + time.Minute, 1},
		{20 * time.Minute, 1},
	} {
		clock.Set(T0.Add(step.after))
		// A probe that asks for more than the free slots is refused, and
		// one that fits is admitted and released at once.
		probe := plan()
		r, err := s.B.Reserve(ctx, fmt.Sprint("probe-", step.after), probe, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := step.parallel < 2; r.OK != want {
			t.Fatalf("at %s: probe ok=%v, want %v (slots held %d): %+v", step.after, r.OK, want, step.parallel, r)
		}
		if r.OK {
			if r.States[1].Used != step.parallel+1 {
				t.Fatalf("at %s: parallel = %d, want %d", step.after, r.States[1].Used, step.parallel+1)
			}
			settle(t, s.B, fmt.Sprint("probe-", step.after), probe, limits.Usage{})
		}
	}
	u := limits.Usage{Cost: 2_000_000, Requests: 1}
	if !settle(t, s.A, "long", cs, u) {
		t.Fatal("the long reservation's settle was refused before its deadline")
	}
	// The settle freed the slot and charged the actual cost, not the
	// estimate: 2.0 for "long" + 0.3 for the vanished "short".
	if v := get(t, s, cs[0]); v != 2_300_000 {
		t.Fatalf("budget = %d, want 2300000", v)
	}
	if v := get(t, s, cs[1]); v != 0 {
		t.Fatalf("parallel = %d after settle, want 0", v)
	}
}

// testIdle: a budget with an idle expiry (a session's) is forgotten Idle
// after its last admitted reservation, or at its period's end if sooner;
// a refusal neither refreshes it nor is permanent: its Retry-After is the
// time until the counter is forgotten.
func testIdle(t *testing.T, s Stores, clock *Clock) {
	type step struct {
		at        time.Duration // from T0
		ok        bool
		used      int64         // the state: after if admitted, before if refused
		retry     time.Duration // when refused
		fromOther bool          // reserve through the other replica
	}
	tests := []struct {
		name   string
		idle   time.Duration
		period budget.Period
		steps  []step
	}{
		{"lifetime budget, refreshed by each reservation", time.Hour, budget.None, []step{
			{at: 0, ok: true, used: 400_000},
			{at: 30 * time.Minute, ok: true, used: 800_000, fromOther: true},
			{at: 30 * time.Minute, ok: false, used: 800_000, retry: time.Hour},
			// The refusal did not refresh it: 1h after the last admission.
			{at: 89 * time.Minute, ok: false, used: 800_000, retry: time.Minute, fromOther: true},
			{at: 90 * time.Minute, ok: true, used: 400_000},
		}},
		{"period end comes first", 24 * time.Hour, budget.Day, []step{
			{at: 0, ok: true, used: 400_000},
			{at: time.Minute, ok: true, used: 800_000},
			{at: time.Minute, ok: false, used: 800_000, retry: 12*time.Hour - time.Minute},
			{at: 12 * time.Hour, ok: true, used: 400_000, fromOther: true},
		}},
		{"idle comes first within a period", time.Hour, budget.Day, []step{
			{at: 0, ok: true, used: 400_000},
			{at: 0, ok: true, used: 800_000},
			{at: 10 * time.Minute, ok: false, used: 800_000, retry: 50 * time.Minute},
			{at: time.Hour, ok: true, used: 400_000},
		}},
		{"an idle shorter than a reservation's lifetime waits for its deadline", time.Second, budget.None, []step{
			{at: 0, ok: true, used: 400_000},
			{at: 30 * time.Second, ok: true, used: 800_000},
			{at: 30 * time.Second, ok: false, used: 800_000, retry: ttl},
			{at: 30*time.Second + ttl, ok: true, used: 400_000},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planner(clock)
			subj := []limits.Subject{{Scope: "session", ID: "k1:" + tc.name, Name: "session abc of key K",
				Idle: tc.idle, Limits: limits.Limits{MaxBudget: 1, BudgetDuration: tc.period}}}
			for i, st := range tc.steps {
				clock.Set(T0.Add(st.at))
				cs := p.Plan(nil, subj, "", limits.Estimate{Cost: 400_000})
				store := s.A
				if st.fromOther {
					store = s.B
				}
				r := reserve(t, store, fmt.Sprint(tc.name, i), cs)
				if r.OK != st.ok || r.States[0].Used != st.used {
					t.Fatalf("step %d at %s: ok=%v used=%d, want %v %d", i, st.at, r.OK, r.States[0].Used, st.ok, st.used)
				}
				if st.ok {
					continue
				}
				err := r.Err(cs)
				ra, _ := errs.RetryAfter(err)
				if errs.Status(err) != 429 || ra != st.retry || r.RetryAfter != st.retry {
					t.Fatalf("step %d: status %d retry %s (result %s), want 429 %s: %v", i, errs.Status(err), ra, r.RetryAfter, st.retry, err)
				}
				if want := "budget exceeded: session abc of key K reached its budget of $1.00"; err.Error() != want {
					t.Fatalf("step %d: %q, want %q", i, err, want)
				}
			}
		})
	}
}
