package admission_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
	"github.com/weir-ai/weir/test/redistest"
)

// TestProbeAfterLongOutage: after an outage long enough that the Redis
// client stops dialing (go-redis, after PoolSize failed dials in a row,
// answers every call that needs a connection with the last dial error
// until its own redial, once a second, succeeds), the first probe once
// Redis is back must see Redis, not the client's memory of the outage:
// the breaker closes and the probe's request is served by Redis, in
// either fail mode. It failed before (the probe got "connection refused"
// from the client and kept the breaker open one more probe interval:
// e2e TestRedisDownThenBack/open's flake).
func TestProbeAfterLongOutage(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			addr := redistest.Reserve(t) // nothing listens there yet
			clock := limitstest.NewClock(limitstest.T0)
			st, err := admission.OpenStore(&config.Limits{
				Store: "redis", FailMode: mode, Redis: &config.Redis{Addr: addr},
				Breaker: &config.Breaker{Failures: 1, ProbeInterval: config.Duration(time.Minute)},
			}, admission.StoreOptions{Clock: clock.Func(), Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// The outage: more failed dials than the pool holds
			// connections, so the client stops dialing.
			var wg sync.WaitGroup
			for range st.Redis.Options().PoolSize {
				wg.Go(func() { _ = st.Redis.Ping(ctx).Err() })
			}
			wg.Wait()
			cs := (&limits.Planner{Clock: clock.Func()}).Plan(nil,
				[]limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 1000}}}, "", limits.Estimate{})
			if res, err := st.Reserve(ctx, "during", cs, time.Minute); err == nil && !res.Degraded {
				t.Fatalf("served by Redis while it is down: %+v", res)
			}
			b, _ := st.Breaker()
			if b.State() != limits.BreakerOpen {
				t.Fatalf("breaker %s during the outage, want open", b.State())
			}

			redistest.StartAt(t, addr)
			clock.Add(time.Minute) // the probe is due
			res, err := st.Reserve(ctx, "probe", cs, time.Minute)
			if err != nil || !res.OK || res.Degraded {
				t.Errorf("probe with Redis back: %+v, %v; want served by Redis", res, err)
			}
			if b.State() != limits.BreakerClosed {
				t.Errorf("breaker %s after the probe, want closed", b.State())
			}
		})
	}
}
