package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/test/redistest"
)

// fakeClock is the replicas' clock: the breaker's probe interval passes
// when the test says so, not after a sleep.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// breakerMetrics reads the limits store's breaker from the replica's
// Prometheus registry, as a scrape would: the state gauge and the
// transitions into open, half_open and closed.
func breakerMetrics(t *testing.T, s *extproc.Server) (state float64, open, halfOpen, closed float64) {
	t.Helper()
	mfs, err := s.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["store"] != "limits" {
				continue
			}
			switch mf.GetName() {
			case "weir_redis_breaker_state":
				state = m.GetGauge().GetValue()
			case "weir_redis_breaker_transitions_total":
				v := m.GetCounter().GetValue()
				switch labels["to"] {
				case "open":
					open = v
				case "half_open":
					halfOpen = v
				case "closed":
					closed = v
				}
			}
		}
	}
	return state, open, halfOpen, closed
}

func wantBreaker(t *testing.T, s *extproc.Server, phase string, state, open, halfOpen, closed float64) {
	t.Helper()
	gs, go_, gh, gc := breakerMetrics(t, s)
	if gs != state || go_ != open || gh != halfOpen || gc != closed {
		t.Errorf("%s: weir_redis_breaker_state %v, transitions open/half_open/closed %v/%v/%v; want %v, %v/%v/%v",
			phase, gs, go_, gh, gc, state, open, halfOpen, closed)
	}
}

// wantNotReady checks /readyz's reasons by their prefixes ("keys:",
// "limits:"); none means ready.
func wantNotReady(t *testing.T, s *extproc.Server, phase string, prefixes ...string) {
	t.Helper()
	var got []string
	for _, r := range s.NotReady() {
		got = append(got, r[:strings.Index(r, ":")+1])
	}
	if !slices.Equal(got, prefixes) {
		t.Errorf("%s: not ready because %q, want %q", phase, s.NotReady(), prefixes)
	}
}

// TestRedisDownThenBack runs a replica whose Redis is down at start-up,
// comes up, goes down mid-run and comes back (an empty server on the same
// port, as after a crash without persistence), in each fail mode.
//
// While Redis is down, fail_open serves every request from the local
// fallback and fail_closed answers 503 with Retry-After (until the next
// probe); after two failures the breaker opens and the metrics say so.
// The admin API's keys load as soon as Redis answers, without a restart;
// /readyz reports the missing keys and a fail_closed outage. The breaker
// closes at the first probe after Redis returns.
func TestRedisDownThenBack(t *testing.T) {
	const master = "mk-e2e-redis-outage-7f3a9c2e5b8d1046"
	for _, tc := range []struct {
		mode   string
		status int      // a request's answer while Redis is down
		retry  []string // fail_closed's Retry-After for three requests
		outage []string // readiness reasons while the breaker is open
	}{
		{"open", 200, nil, nil},
		{"closed", 503, []string{"1", "60", "60"}, []string{"limits:"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			addr := redistest.Reserve(t) // nothing listens there yet
			clk := newFakeClock()
			key, hash := newKey(t)
			g := startGatewayWith(t, limitsBase+fmt.Sprintf(`
limits: {store: redis, fail_mode: %s, redis: {addr: %q}, breaker: {failures: 2, probe_interval: 1m}}
auth:
  keys:
    - {hash: %s, rpm_limit: 1000}
`, tc.mode, addr, hash), 1, extproc.Options{Now: clk.now})
			s := g.replicas[0]
			// The admin API is set up before serving, as the daemon does.
			apiURL := keyAdminAPI(t, s, master)
			wantBreaker(t, s, "start", 0, 0, 0, 0)
			wantNotReady(t, s, "start, redis down", "keys:")

			// send counts requests, and quiesce waits until each has
			// settled: a settle that reaches Redis after it stopped counts
			// as a failure towards the breaker.
			var sent, finished int
			send := func(k string) (*http.Response, []byte) {
				sent++
				return chat(t, g.URL, k, "gpt-4o-mini", nil)
			}
			quiesce := func() {
				t.Helper()
				deadline := time.After(10 * time.Second)
				for ; finished < sent; finished++ {
					select {
					case <-g.done:
					case <-deadline:
						t.Fatalf("%d of %d requests settled", finished, sent)
					}
				}
			}
			outage := func(phase string) {
				t.Helper()
				for i := range 3 {
					resp, body := send(key.Reveal())
					if resp.StatusCode != tc.status {
						t.Fatalf("%s, request %d: %d %s, want %d", phase, i, resp.StatusCode, body, tc.status)
					}
					if tc.status != 503 {
						continue
					}
					if ra := resp.Header.Get("retry-after"); ra != tc.retry[i] {
						t.Errorf("%s, request %d: Retry-After %q, want %q", phase, i, ra, tc.retry[i])
					}
					if r := resp.Header.Get("x-weir-refusal-rule"); r != "store.unavailable" || gjson.GetBytes(body, "error.type").Str != "server_error" ||
						strings.Contains(string(body), addr) {
						t.Errorf("%s, request %d: rule %q, body %s", phase, i, r, body)
					}
				}
			}

			// Down at start-up.
			outage("down at start-up")
			wantBreaker(t, s, "down at start-up", 1, 1, 0, 0)
			wantNotReady(t, s, "down at start-up", append([]string{"keys:"}, tc.outage...)...)

			r := redistest.StartAt(t, addr)
			g.await(t, "the store's keys once Redis is up", func() bool {
				return !slices.ContainsFunc(s.NotReady(), func(r string) bool { return strings.HasPrefix(r, "keys:") })
			})
			wantNotReady(t, s, "keys loaded, breaker still open", tc.outage...)
			clk.advance(time.Minute) // the probe is due
			if resp, body := send(key.Reveal()); resp.StatusCode != 200 {
				t.Fatalf("after the probe interval: %d %s", resp.StatusCode, body)
			}
			wantBreaker(t, s, "up", 0, 1, 1, 1)
			wantNotReady(t, s, "up")

			// An admin-API key, created now, is served.
			adminKey := gjson.GetBytes(adminOK(t, apiURL, master, "/key/generate", `{"key_alias":"outage","rpm_limit":1000}`), "key").Str
			adminStatus := func() int { resp, _ := send(adminKey); return resp.StatusCode }
			g.await(t, "the admin-API key", func() bool { return adminStatus() != 401 })
			if c := adminStatus(); c != 200 {
				t.Fatalf("admin-API key: %d", c)
			}

			// Down mid-run: the keys loaded stay, the breaker opens again.
			quiesce()
			r.Stop()
			outage("down mid-run")
			if c := adminStatus(); c != tc.status {
				t.Errorf("admin-API key during the outage: %d, want %d (its key is kept)", c, tc.status)
			}
			wantBreaker(t, s, "down mid-run", 1, 2, 1, 1)
			wantNotReady(t, s, "down mid-run", tc.outage...)

			// Back, empty: the syncer reads it (the admin key is gone with
			// the unpersisted data), and the next probe closes the breaker.
			r.Restart(t)
			g.await(t, "the restarted store's keys", func() bool { return adminStatus() == 401 })
			clk.advance(time.Minute)
			if resp, body := send(key.Reveal()); resp.StatusCode != 200 {
				t.Fatalf("after the second outage: %d %s", resp.StatusCode, body)
			}
			wantBreaker(t, s, "back", 0, 2, 2, 2)
			wantNotReady(t, s, "back")
		})
	}
}
