package limits_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
)

var errDown = errors.New("dial tcp 10.0.0.7:6379: connect: connection refused")

// flaky is a shared store that can be taken down, and counts the calls
// that reached it: a call the breaker short-circuits never gets here.
type flaky struct {
	mem   *limits.Memory
	down  atomic.Bool
	calls atomic.Int64
	// hold, if set, blocks each call until it is closed or receives.
	hold chan struct{}
	// entered receives when a call has reached the store.
	entered chan struct{}
}

func (f *flaky) enter(ctx context.Context) error {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	if f.down.Load() {
		return errDown
	}
	return ctx.Err()
}

func (f *flaky) Reserve(ctx context.Context, id string, cs []limits.Counter, ttl time.Duration) (limits.Result, error) {
	if err := f.enter(ctx); err != nil {
		return limits.Result{}, err
	}
	return f.mem.Reserve(ctx, id, cs, ttl)
}

func (f *flaky) Settle(ctx context.Context, id string, cs []limits.Counter, u limits.Usage) (bool, error) {
	if err := f.enter(ctx); err != nil {
		return false, err
	}
	return f.mem.Settle(ctx, id, cs, u)
}

type transitions []string

func (tr *transitions) record(from, to limits.BreakerState) {
	*tr = append(*tr, from.String()+">"+to.String())
}

func newGuard(mode limits.FailMode, clock budget.Clock, tr *transitions) (*limits.Guard, *flaky) {
	f := &flaky{mem: limits.NewMemory(clock)}
	g := &limits.Guard{
		Primary: f, Local: limits.NewMemory(clock), Mode: mode, Clock: clock,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Breaker: &limits.Breaker{Failures: 3, Probe: 10 * time.Second, Clock: clock, OnChange: tr.record},
	}
	return g, f
}

// TestGuardBreaker walks a store through an outage in each fail mode: the
// breaker opens after Failures consecutive failures, then answers without
// calling the store (fail_open: the local fallback; fail_closed: 503 with
// Retry-After until the next probe), sends one probe per interval, and
// closes when a probe succeeds.
func TestGuardBreaker(t *testing.T) {
	type step struct {
		name    string
		advance time.Duration
		down    bool
		calls   int64  // calls that reached the store
		want    string // "ok", or "fallback": the mode's answer to an outage
		state   limits.BreakerState
		retry   time.Duration // fail_closed's Retry-After for a fallback
	}
	steps := []step{
		{name: "up", calls: 1, want: "ok", state: limits.BreakerClosed},
		{name: "first failure", down: true, calls: 1, want: "fallback", state: limits.BreakerClosed, retry: time.Second},
		{name: "second failure", down: true, calls: 1, want: "fallback", state: limits.BreakerClosed, retry: time.Second},
		{name: "third failure opens", down: true, calls: 1, want: "fallback", state: limits.BreakerOpen, retry: 10 * time.Second},
		{name: "open: no call", down: true, calls: 0, want: "fallback", state: limits.BreakerOpen, retry: 10 * time.Second},
		{name: "open, probe not due", advance: 4 * time.Second, down: true, calls: 0, want: "fallback", state: limits.BreakerOpen, retry: 6 * time.Second},
		{name: "probe fails", advance: 6 * time.Second, down: true, calls: 1, want: "fallback", state: limits.BreakerOpen, retry: 10 * time.Second},
		{name: "reopened: no call", down: true, calls: 0, want: "fallback", state: limits.BreakerOpen, retry: 10 * time.Second},
		{name: "probe succeeds", advance: 10 * time.Second, calls: 1, want: "ok", state: limits.BreakerClosed},
		{name: "closed again", calls: 1, want: "ok", state: limits.BreakerClosed},
	}
	wantTransitions := []string{"closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"}
	for _, mode := range []limits.FailMode{limits.FailOpen, limits.FailClosed} {
		t.Run(string(mode), func(t *testing.T) {
			clock := limitstest.NewClock(limitstest.T0)
			var tr transitions
			g, f := newGuard(mode, clock.Func(), &tr)
			cs := (&limits.Planner{Clock: clock.Func()}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 1000}}}, "", limits.Estimate{})
			for i, s := range steps {
				clock.Add(s.advance)
				f.down.Store(s.down)
				before := f.calls.Load()
				res, err := g.Reserve(context.Background(), "r"+string(rune('a'+i)), cs, time.Minute)
				if got := f.calls.Load() - before; got != s.calls {
					t.Errorf("%s: %d calls reached the store, want %d", s.name, got, s.calls)
				}
				if got := g.Breaker.State(); got != s.state {
					t.Errorf("%s: breaker %s, want %s", s.name, got, s.state)
				}
				switch {
				case s.want == "ok":
					if err != nil || !res.OK || res.Degraded {
						t.Errorf("%s: %+v %v, want served by the store", s.name, res, err)
					}
				case mode == limits.FailOpen:
					if err != nil || !res.OK || !res.Degraded {
						t.Errorf("%s: %+v %v, want served by the local fallback", s.name, res, err)
					}
				default:
					ra, ok := errs.RetryAfter(err)
					if errs.Status(err) != 503 || errs.RuleOf(err) != errs.RuleStoreUnavailable || !ok || ra != s.retry {
						t.Errorf("%s: %v (status %d, rule %q, retry-after %v %v), want 503 %s with Retry-After %v",
							s.name, err, errs.Status(err), errs.RuleOf(err), ra, ok, errs.RuleStoreUnavailable, s.retry)
					}
					if errors.Is(err, errDown) {
						t.Errorf("%s: the client's error carries the store's: %v", s.name, err)
					}
				}
			}
			if got := []string(tr); !equal(got, wantTransitions) {
				t.Errorf("transitions %v, want %v", got, wantTransitions)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGuardBreakerOneProbe: while a probe is in flight the breaker is
// half-open and every other call is answered without the store, so a
// recovering Redis sees one request per interval, not the whole backlog.
func TestGuardBreakerOneProbe(t *testing.T) {
	for _, mode := range []limits.FailMode{limits.FailOpen, limits.FailClosed} {
		t.Run(string(mode), func(t *testing.T) {
			clock := limitstest.NewClock(limitstest.T0)
			var tr transitions
			g, f := newGuard(mode, clock.Func(), &tr)
			cs := (&limits.Planner{Clock: clock.Func()}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 1000}}}, "", limits.Estimate{})
			f.down.Store(true)
			for i := range 3 {
				_, _ = g.Reserve(context.Background(), "fail"+string(rune('0'+i)), cs, time.Minute)
			}
			if g.Breaker.State() != limits.BreakerOpen {
				t.Fatalf("breaker %s after 3 failures", g.Breaker.State())
			}
			clock.Add(10 * time.Second)
			f.down.Store(false)
			f.hold, f.entered = make(chan struct{}), make(chan struct{}, 1)
			probed := make(chan error, 1)
			go func() {
				_, err := g.Reserve(context.Background(), "probe", cs, time.Minute)
				probed <- err
			}()
			<-f.entered // the probe is at the store
			if g.Breaker.State() != limits.BreakerHalfOpen {
				t.Errorf("breaker %s during the probe, want half_open", g.Breaker.State())
			}
			before := f.calls.Load()
			_, err := g.Reserve(context.Background(), "during", cs, time.Minute)
			if f.calls.Load() != before {
				t.Errorf("a second call reached the store during the probe")
			}
			if mode == limits.FailClosed && errs.Status(err) != 503 {
				t.Errorf("during the probe: %v, want 503", err)
			}
			// A settle meanwhile is queued, not sent.
			if _, err := g.Settle(context.Background(), "during-settle", cs, limits.Usage{Requests: 1}); err == nil || f.calls.Load() != before {
				t.Errorf("settle during the probe: %v, %d calls", err, f.calls.Load()-before)
			}
			close(f.hold)
			if err := <-probed; err != nil {
				t.Fatalf("probe: %v", err)
			}
			if g.Breaker.State() != limits.BreakerClosed {
				t.Errorf("breaker %s after a good probe", g.Breaker.State())
			}
		})
	}
}

// TestGuardBreakerSettleAndReconcile: an open breaker also keeps settles
// and the reconciler away from the store; the reconciler's call is a probe
// once one is due, so an idle replica closes its breaker too.
func TestGuardBreakerSettleAndReconcile(t *testing.T) {
	clock := limitstest.NewClock(limitstest.T0)
	var tr transitions
	g, f := newGuard(limits.FailOpen, clock.Func(), &tr)
	cs := (&limits.Planner{Clock: clock.Func()}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{MaxBudget: 10, BudgetDuration: budget.Month}}}, "", limits.Estimate{Cost: 100})
	if _, err := g.Reserve(context.Background(), "a", cs, time.Minute); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	for i := range 3 {
		_, _ = g.Reserve(context.Background(), "fail"+string(rune('0'+i)), cs, time.Minute)
	}
	before := f.calls.Load()
	if _, err := g.Settle(context.Background(), "a", cs, limits.Usage{Cost: 50, Requests: 1}); err == nil {
		t.Error("settle while open: no error, want queued")
	}
	if n, err := g.Reconcile(context.Background()); n != 0 || err == nil {
		t.Errorf("reconcile while open: %d %v", n, err)
	}
	if got := f.calls.Load() - before; got != 0 {
		t.Errorf("%d calls reached the store while open", got)
	}
	waiting, _ := g.Backlog()
	clock.Add(10 * time.Second)
	f.down.Store(false)
	if n, err := g.Reconcile(context.Background()); n != waiting || err != nil {
		t.Errorf("reconcile after the probe interval: %d of %d, %v", n, waiting, err)
	}
	if g.Breaker.State() != limits.BreakerClosed {
		t.Errorf("breaker %s after a successful reconcile", g.Breaker.State())
	}
}

// TestGuardProbeWithoutTraffic: an open breaker is probed by the guard's
// own Probe (run by Guard.Run), so it closes when the store returns even
// if no request comes: a fail_closed replica that reports itself not
// ready gets no traffic to probe with.
func TestGuardProbeWithoutTraffic(t *testing.T) {
	clock := limitstest.NewClock(limitstest.T0)
	var tr transitions
	g, f := newGuard(limits.FailClosed, clock.Func(), &tr)
	g.Ping = func(ctx context.Context) error { return f.enter(ctx) }
	cs := (&limits.Planner{Clock: clock.Func()}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 1000}}}, "", limits.Estimate{})
	for _, s := range []struct {
		name    string
		advance time.Duration
		down    bool
		calls   int64
		state   limits.BreakerState
	}{
		{"closed: no probe", 0, false, 0, limits.BreakerClosed},
		{"open, not due", 0, true, 0, limits.BreakerOpen},
		{"due, still down", 10 * time.Second, true, 1, limits.BreakerOpen},
		{"due, back", 10 * time.Second, false, 1, limits.BreakerClosed},
	} {
		if s.name == "open, not due" {
			f.down.Store(true)
			for i := range 3 {
				_, _ = g.Reserve(context.Background(), "f"+string(rune('0'+i)), cs, time.Minute)
			}
		}
		clock.Add(s.advance)
		f.down.Store(s.down)
		before := f.calls.Load()
		g.Probe(context.Background())
		if got := f.calls.Load() - before; got != s.calls {
			t.Errorf("%s: %d probes reached the store, want %d", s.name, got, s.calls)
		}
		if got := g.Breaker.State(); got != s.state {
			t.Errorf("%s: breaker %s, want %s", s.name, got, s.state)
		}
	}
}

// lossy applies every call to the store, then loses the reply of the
// calls whose number (from 1) is in lose: Redis ran the script, the
// client saw a timeout.
type lossy struct {
	mem   *limits.Memory
	calls int
	lose  map[int]bool
}

func (l *lossy) lost() error {
	l.calls++
	if l.lose[l.calls] {
		return errDown
	}
	return nil
}

func (l *lossy) Reserve(ctx context.Context, id string, cs []limits.Counter, ttl time.Duration) (limits.Result, error) {
	r, err := l.mem.Reserve(ctx, id, cs, ttl)
	if err == nil {
		err = l.lost()
	}
	return r, err
}

func (l *lossy) Settle(ctx context.Context, id string, cs []limits.Counter, u limits.Usage) (bool, error) {
	ok, err := l.mem.Settle(ctx, id, cs, u)
	if err == nil {
		err = l.lost()
	}
	return ok, err
}

// TestReconcileReplyLost: a replay of locally served usage that reached
// the store but whose reply was lost is replayed again, and must not be
// charged twice. The store forgets a reservation at its settle, so the
// replay must be a reservation the store still remembers on the retry.
func TestReconcileReplyLost(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose map[int]bool // primary calls made by reconciles
	}{
		{"nothing lost", nil},
		{"first reply lost", map[int]bool{1: true}},
		{"second reply lost", map[int]bool{2: true}},
		{"two replies lost", map[int]bool{1: true, 2: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := limitstest.NewClock(limitstest.T0)
			primary := &lossy{mem: limits.NewMemory(clock.Func()), lose: tt.lose}
			down := &flaky{mem: limits.NewMemory(clock.Func())}
			down.down.Store(true)
			g := &limits.Guard{Primary: down, Local: limits.NewMemory(clock.Func()), Mode: limits.FailOpen, Clock: clock.Func(),
				Log: slog.New(slog.DiscardHandler)}
			usd := budget.FromUSD(1)
			plan := func(est int64) []limits.Counter {
				return (&limits.Planner{Clock: clock.Func()}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{MaxBudget: 10, BudgetDuration: budget.Month}}}, "", limits.Estimate{Cost: est * usd})
			}
			// Served locally during the outage; its usage (6) waits for
			// the store.
			if r, err := g.Reserve(context.Background(), "a", plan(6), time.Minute); err != nil || !r.OK {
				t.Fatalf("local reserve: %+v %v", r, err)
			}
			if _, err := g.Settle(context.Background(), "a", plan(6), limits.Usage{Cost: 6 * usd, Requests: 1}); err != nil {
				t.Fatal(err)
			}
			g.Primary = primary
			for range 4 {
				if _, err := g.Reconcile(context.Background()); err == nil {
					break
				}
			}
			if w, _ := g.Backlog(); w != 0 {
				t.Fatalf("backlog %d after reconciles", w)
			}
			// 6 charged once leaves room for 4; charged twice, none.
			if r, _ := primary.mem.Reserve(context.Background(), "b", plan(4), time.Minute); !r.OK {
				t.Errorf("usage replayed more than once: a 4 reservation on a 10 budget is refused")
			}
			if r, _ := primary.mem.Reserve(context.Background(), "c", plan(1), time.Minute); r.OK {
				t.Errorf("usage not replayed: 6+4+1 fits a 10 budget")
			}
		})
	}
}

// TestGuardProbeOnFreshConnection: a probe that fails is tried once more
// on Guard.Fresh, and that try is the verdict, so a client that still
// fails after the outage (its store is back) does not keep the breaker
// open; a store that is really down still does. Calls that are not
// probes never open a fresh connection.
func TestGuardProbeOnFreshConnection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		probe      bool // the call is a due probe (else the breaker is closed)
		clientDown bool // the guard's own client fails
		storeDown  bool // so does a fresh connection: the store is down
		settle     bool // the probe is a settle (reconciliation), not a reserve
		opened     int  // fresh connections opened (each also closed)
		want       limits.BreakerState
		served     bool // the call's answer came from the store
	}{
		{name: "stale client, store back", probe: true, clientDown: true, opened: 1, want: limits.BreakerClosed, served: true},
		{name: "stale client, store back, settle", probe: true, clientDown: true, settle: true, opened: 1, want: limits.BreakerClosed, served: true},
		{name: "store still down", probe: true, clientDown: true, storeDown: true, opened: 1, want: limits.BreakerOpen},
		{name: "healthy probe", probe: true, want: limits.BreakerClosed, served: true},
		{name: "not a probe", clientDown: true, want: limits.BreakerClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := limitstest.NewClock(limitstest.T0)
			var tr transitions
			g, f := newGuard(limits.FailClosed, clock.Func(), &tr)
			fresh := &flaky{mem: f.mem} // the same store, reached anew
			var opened, closed int
			g.Fresh = func() (limits.Store, func()) {
				opened++
				return fresh, func() { closed++ }
			}
			cs := (&limits.Planner{Clock: clock.Func()}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 1000}}}, "", limits.Estimate{})
			if _, err := g.Reserve(ctx, "held", cs, time.Minute); err != nil {
				t.Fatal(err)
			}
			if tc.probe {
				f.down.Store(true)
				if tc.settle {
					// A settle the store cannot take waits in the backlog;
					// the reconcile that replays it is the probe.
					_, _ = g.Settle(ctx, "held", cs, limits.Usage{Requests: 1})
				}
				for i := range 3 {
					_, _ = g.Reserve(ctx, "fail"+string(rune('0'+i)), cs, time.Minute)
				}
				if g.Breaker.State() != limits.BreakerOpen {
					t.Fatalf("breaker %s, want open before the probe", g.Breaker.State())
				}
				clock.Add(10 * time.Second)
			}
			f.down.Store(tc.clientDown)
			fresh.down.Store(tc.storeDown)
			served := false
			if tc.settle {
				n, err := g.Reconcile(ctx)
				served = err == nil && n == 1
			} else {
				res, err := g.Reserve(ctx, "call", cs, time.Minute)
				served = err == nil && res.OK && !res.Degraded
			}
			if served != tc.served {
				t.Errorf("served by the store: %v, want %v", served, tc.served)
			}
			if got := g.Breaker.State(); got != tc.want {
				t.Errorf("breaker %s, want %s (transitions %v)", got, tc.want, tr)
			}
			if opened != tc.opened || closed != opened {
				t.Errorf("fresh connections opened %d, closed %d; want %d, each closed", opened, closed, tc.opened)
			}
		})
	}
}
