package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
	"github.com/weir-ai/weir/extproc/limits/redisstore"
	"github.com/weir-ai/weir/test/redistest"
)

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// The outage test makes go-redis log every failed dial.
	redis.SetLogger(quiet{})
	m.Run()
}

// TestRedis runs the store suite with two clients, each with its own
// connection pool: two replicas sharing one Redis.
func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	limitstest.Run(t, func(t *testing.T, clock budget.Clock) limitstest.Stores {
		a, b := srv.Client(), srv.Client()
		t.Cleanup(func() { a.Close(); b.Close() })
		if err := a.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		sa := redisstore.New(a, redisstore.Options{Clock: clock})
		return limitstest.Stores{A: sa, B: redisstore.New(b, redisstore.Options{Clock: clock}), Get: sa.Get,
			Records: func(ctx context.Context) (int, error) {
				keys, err := a.Keys(ctx, "{weir}:r:*").Result()
				return len(keys), err
			}}
	})
}

// counter counts the commands a client sends, pipelines by their length.
type counter struct {
	cmds  atomic.Int64
	trips atomic.Int64
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.cmds.Add(1)
		c.trips.Add(1)
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}

func TestOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	var n counter
	c.AddHook(&n)
	clock := limitstest.NewClock(limitstest.T0)
	st := redisstore.New(c, redisstore.Options{Clock: clock.Func()})
	p := &limits.Planner{Clock: clock.Func()}
	subj := []limits.Subject{
		{Scope: "key", ID: "k", Limits: limits.Limits{MaxBudget: 100, BudgetDuration: budget.Day, RPM: 1000, TPM: 1e6, MaxParallel: 100},
			Models: map[string]limits.Limits{"m": {RPM: 500, TPM: 1e5}}},
		{Scope: "team", ID: "t", Limits: limits.Limits{MaxBudget: 1000, RPM: 5000}},
		{Scope: "global", Limits: limits.Limits{MaxBudget: 10000}},
	}
	cs := p.Plan(nil, subj, "m", limits.Estimate{Cost: 100, Tokens: 100})
	if len(cs) != 9 {
		t.Fatalf("%d counters", len(cs))
	}
	ctx := context.Background()
	// After SCRIPT FLUSH the first EVALSHA answers NOSCRIPT and go-redis
	// falls back to EVAL, which also loads the script.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	n.trips.Store(0)
	if r, err := st.Reserve(ctx, "first", cs, time.Minute); err != nil || !r.OK {
		t.Fatalf("%+v %v", r, err)
	}
	if got := n.trips.Load(); got != 2 {
		t.Fatalf("first reserve after SCRIPT FLUSH: %d round trips, want 2 (EVALSHA, EVAL)", got)
	}
	if _, err := st.Settle(ctx, "first", cs, limits.Usage{}); err != nil {
		t.Fatal(err)
	}
	const reqs = 50
	n.trips.Store(0)
	n.cmds.Store(0)
	for i := range reqs {
		id := fmt.Sprint("r", i)
		before := n.trips.Load()
		if r, err := st.Reserve(ctx, id, cs, time.Minute); err != nil || !r.OK {
			t.Fatalf("%+v %v", r, err)
		}
		if got := n.trips.Load() - before; got != 1 {
			t.Fatalf("reserve took %d round trips", got)
		}
		if _, err := st.Settle(ctx, id, cs, limits.Usage{Cost: 50, Tokens: 70, Requests: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if trips, cmds := n.trips.Load(), n.cmds.Load(); trips != 2*reqs || cmds != 2*reqs {
		t.Fatalf("%d requests took %d round trips, %d commands; want %d each", reqs, trips, cmds, 2*reqs)
	}
}

// TestOutage kills the Redis server mid-run, with four workers reserving
// and settling, in each fail mode.
func TestOutage(t *testing.T) {
	for _, mode := range []limits.FailMode{limits.FailOpen, limits.FailClosed} {
		t.Run(string(mode), func(t *testing.T) {
			srv := redistest.Start(t)
			c := srv.Client()
			defer c.Close()
			clock := limitstest.NewClock(limitstest.T0)
			g := &limits.Guard{
				Primary: redisstore.New(c, redisstore.Options{Clock: clock.Func()}),
				Local:   limits.NewMemory(clock.Func()),
				Mode:    mode,
				Clock:   clock.Func(),
				Log:     slog.New(slog.DiscardHandler),
			}
			p := &limits.Planner{Clock: clock.Func()}
			subj := []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{MaxBudget: 1000, BudgetDuration: budget.Month}}}
			cs := p.Plan(nil, subj, "", limits.Estimate{Cost: 1000})
			const workers, each, killAfter = 4, 50, 60
			var (
				wg                                 sync.WaitGroup
				done, degraded, unavailable, other atomic.Int64
				kill                               sync.Once
			)
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						id := fmt.Sprintf("w%d-%d", w, i)
						r, err := g.Reserve(context.Background(), id, cs, time.Minute)
						switch {
						case errors.Is(err, errs.ErrUnavailable) && errs.Status(err) == 503:
							unavailable.Add(1)
						case err != nil:
							other.Add(1)
							t.Errorf("reserve: %v", err)
						case r.OK:
							if r.Degraded {
								degraded.Add(1)
							}
							// Settle errors are queued for reconciliation.
							_, _ = g.Settle(context.Background(), id, cs, limits.Usage{Cost: 1000, Requests: 1})
						}
						if done.Add(1) == killAfter {
							kill.Do(srv.Stop)
						}
					}
				})
			}
			wg.Wait()
			t.Logf("%s: %d requests, %d served degraded, %d refused 503", mode, done.Load(), degraded.Load(), unavailable.Load())
			// Requests already in flight when the server died may finish.
			after := workers*each - killAfter - (workers - 1)
			switch mode {
			case limits.FailOpen:
				if unavailable.Load() != 0 || degraded.Load() < int64(after) {
					t.Fatalf("fail_open: %d unavailable, %d degraded; want 0 and ≥ %d", unavailable.Load(), degraded.Load(), after)
				}
				// Back up (empty, as after a crash without persistence):
				// reconciliation replays the usage served locally.
				srv = srv.Restart(t)
				// The old client's pool backs off dialling for a second
				// after repeated failures (Guard.Run retries on a ticker);
				// a fresh client stands for it without a wait.
				c2 := srv.Client()
				defer c2.Close()
				g.Primary = redisstore.New(c2, redisstore.Options{Clock: clock.Func()})
				waiting, _ := g.Backlog()
				n, err := g.Reconcile(context.Background())
				if err != nil || n != waiting {
					t.Fatalf("reconcile: %d of %d, %v", n, waiting, err)
				}
				v, err := redisstore.New(c2, redisstore.Options{}).Get(context.Background(), cs[0])
				if err != nil || v != degraded.Load()*1000 {
					t.Fatalf("after reconcile the budget holds %d, want %d (%v)", v, degraded.Load()*1000, err)
				}
				if n, err := g.Reconcile(context.Background()); n != 0 || err != nil {
					t.Fatalf("second reconcile: %d %v", n, err)
				}
			case limits.FailClosed:
				if degraded.Load() != 0 || unavailable.Load() < int64(after) {
					t.Fatalf("fail_closed: %d degraded, %d unavailable; want 0 and ≥ %d", degraded.Load(), unavailable.Load(), after)
				}
			}
		})
	}
}

// BenchmarkRedisReserveSettle is plan + reserve + settle against a local
// redis-server: two round trips per request, one script each.
func BenchmarkRedisReserveSettle(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client()
	defer c.Close()
	st := redisstore.New(c, redisstore.Options{})
	p := &limits.Planner{}
	subj := []limits.Subject{
		{Scope: "key", ID: "0123456789ab", Limits: limits.Limits{MaxBudget: 1e6, BudgetDuration: budget.Month, RPM: 1e9, TPM: 1e12, MaxParallel: 1e6},
			Models: map[string]limits.Limits{"gpt-4o": {RPM: 1e9, TPM: 1e12}}},
		{Scope: "team", ID: "t1", Limits: limits.Limits{MaxBudget: 1e6, BudgetDuration: budget.Month, TPM: 1e12}},
		{Scope: "org", ID: "o1", Limits: limits.Limits{MaxBudget: 1e6, BudgetDuration: budget.Month}},
		{Scope: "global", Limits: limits.Limits{MaxBudget: 1e7, BudgetDuration: budget.Month}},
	}
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // requests in flight, as under load at c=64
	b.RunParallel(func(pb *testing.PB) {
		var buf []limits.Counter
		for pb.Next() {
			id := fmt.Sprint(n.Add(1))
			buf = p.Plan(buf[:0], subj, "gpt-4o", limits.Estimate{Cost: 1000, Tokens: 500})
			if r, err := st.Reserve(ctx, id, buf, time.Minute); err != nil || !r.OK {
				b.Fatal(r, err)
			}
			if _, err := st.Settle(ctx, id, buf, limits.Usage{Cost: 900, Tokens: 400, Requests: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if info, err := c.Info(ctx, "commandstats").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if strings.Contains(l, "evalsha") {
				b.Log(strings.TrimSpace(l))
			}
		}
	}
}

// TestGaugeKeyOutlivesLongestReservation: Redis expires the parallel
// gauge's key in real time, which an injected clock cannot move, so the
// suite cannot see a key cut short. Reservations carry their own ttl; a
// short one made after a long one must not shorten the key below the long
// one's deadline, or the slot it holds would vanish with the key.
func TestGaugeKeyOutlivesLongestReservation(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	const long, short = 31 * time.Minute, 6 * time.Minute
	for _, tt := range []struct {
		name string
		ttls []time.Duration
	}{
		{"long then short", []time.Duration{long, short}},
		{"short then long", []time.Duration{short, long}},
		{"long then many short", []time.Duration{long, short, time.Minute, short}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			clock := limitstest.NewClock(limitstest.T0)
			st := redisstore.New(c, redisstore.Options{Clock: clock.Func()})
			p := &limits.Planner{Clock: clock.Func()}
			cs := p.Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{MaxParallel: 10}}}, "", limits.Estimate{})
			if len(cs) != 1 || cs[0].Dim != limits.Parallel {
				t.Fatalf("plan: %+v", cs)
			}
			for i, ttl := range tt.ttls {
				if r, err := st.Reserve(ctx, fmt.Sprint("r", i), cs, ttl); err != nil || !r.OK {
					t.Fatalf("reserve %d: %+v %v", i, r, err)
				}
			}
			left, err := c.PTTL(ctx, cs[0].Key).Result()
			if err != nil {
				t.Fatal(err)
			}
			// PTTL only falls from ttl+grace as real time passes; the
			// bound is the long ttl itself, far below that.
			if left < long {
				t.Fatalf("gauge key expires in %s, before the %s reservation's deadline", left, long)
			}
		})
	}
}

// TestRefusalWalk: a refused sliding reservation reads only the oldest
// entries that must leave for it to fit, not the whole window. Released
// entries (failed requests) are deleted at settle, so they are never
// walked. The count of hash reads comes from the server's own command
// statistics, which see inside the script.
func TestRefusalWalk(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	tests := []struct {
		name     string
		released int   // entries reserved and released first
		live     int   // entries then filling the window
		tokens   int64 // per live entry
		ask      int64 // tokens the refused request asks
		maxReads int64 // HGET + HMGET calls during the refusal
	}{
		{"full rpm-like window", 0, 2000, 1, 1, 1},
		{"after many failed requests", 2000, 3, 100, 100, 1},
		// 100 entries must leave: pages of 8, 16, 32 and 64.
		{"needs several entries to leave", 0, 2000, 1, 100, 4},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := limitstest.NewClock(limitstest.T0)
			st := redisstore.New(c, redisstore.Options{Clock: clock.Func()})
			p := &limits.Planner{Clock: clock.Func()}
			subj := []limits.Subject{{Scope: "key", ID: fmt.Sprint("walk", i), Limits: limits.Limits{TPM: int64(tc.live) * tc.tokens}}}
			plan := func(tok int64) []limits.Counter { return p.Plan(nil, subj, "", limits.Estimate{Tokens: tok}) }
			for j := range tc.released {
				id := fmt.Sprint(i, "rel", j)
				if r, err := st.Reserve(ctx, id, plan(1), time.Minute); err != nil || !r.OK {
					t.Fatalf("reserve %s: %+v %v", id, r, err)
				}
				if _, err := st.Settle(ctx, id, plan(1), limits.Usage{}); err != nil {
					t.Fatal(err)
				}
			}
			for j := range tc.live {
				clock.Add(time.Millisecond)
				if r, err := st.Reserve(ctx, fmt.Sprint(i, "live", j), plan(tc.tokens), time.Minute); err != nil || !r.OK {
					t.Fatalf("reserve live %d: %+v %v", j, r, err)
				}
			}
			if err := c.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			r, err := st.Reserve(ctx, fmt.Sprint(i, "refused"), plan(tc.ask), time.Minute)
			if err != nil || r.OK {
				t.Fatalf("not refused: %+v %v", r, err)
			}
			// Live entry j was reserved at j+1 ms, and leaves 60 s later;
			// the request fits once ask/tokens of them have left.
			if want := time.Minute + time.Duration(tc.ask/tc.tokens-int64(tc.live))*time.Millisecond; r.RetryAfter != want {
				t.Errorf("Retry-After %s, want %s", r.RetryAfter, want)
			}
			// The record check and the window's total are an HGET each;
			// the walk adds the rest.
			if reads := hashReads(t, c) - 2; reads > tc.maxReads {
				t.Errorf("the refusal read %d hash entries or pages, want at most %d", reads, tc.maxReads)
			}
		})
	}
}

var ctx = context.Background()

func hashReads(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"cmdstat_hget:", "cmdstat_hmget:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
				var calls int64
				fmt.Sscanf(rest, "calls=%d", &calls)
				n += calls
			}
		}
	}
	return n
}

// TestScriptKeysOneSlot: every key the reserve and settle scripts touch
// is declared in KEYS and hashes to one slot, as Redis Cluster requires,
// for every kind of counter: fixed budgets (with and without an idle
// expiry), sliding and fixed rate windows, and the parallel gauge, on a
// reservation admitted, one refused, and the settle.
func TestScriptKeysOneSlot(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	clock := limitstest.NewClock(limitstest.T0)
	st := redisstore.New(c, redisstore.Options{Clock: clock.Func()})
	subj := []limits.Subject{
		{Scope: "key", ID: "k1", Limits: limits.Limits{MaxBudget: 1, BudgetDuration: budget.Day, RPM: 1, TPM: 1000, MaxParallel: 5},
			Models: map[string]limits.Limits{"m": {RPM: 10}}},
		{Scope: "session", ID: "k1:s1", Idle: time.Hour, Limits: limits.Limits{MaxBudget: 1}},
		{Scope: "global", Limits: limits.Limits{MaxBudget: 100}},
	}
	for _, window := range []limits.Window{limits.Sliding, limits.Fixed} {
		p := &limits.Planner{Clock: clock.Func(), RateWindow: window}
		cs := p.Plan(nil, subj, "m", limits.Estimate{Cost: 1000, Tokens: 10})
		scripts := srv.CheckScripts(t, func() {
			id := fmt.Sprint("slot-", window)
			if r, err := st.Reserve(ctx, id, cs, time.Minute); err != nil || !r.OK {
				t.Fatalf("reserve: %+v %v", r, err)
			}
			if r, err := st.Reserve(ctx, id+"-refused", cs, time.Minute); err != nil || r.OK {
				t.Fatalf("second reserve not refused by the rpm of 1: %+v %v", r, err)
			}
			if ok, err := st.Settle(ctx, id, cs, limits.Usage{Cost: 10, Tokens: 5, Requests: 1}); err != nil || !ok {
				t.Fatalf("settle: %v %v", ok, err)
			}
		})
		// At least 3: an EVALSHA the server did not know yet is sent
		// again as EVAL.
		if ran := ranScripts(scripts); ran != 3 {
			t.Fatalf("%d scripts touched keys, want 3", ran)
		}
	}
}

func ranScripts(scripts []redistest.Script) int {
	n := 0
	for _, s := range scripts {
		if len(s.Touched) > 0 {
			n++
		}
	}
	return n
}
