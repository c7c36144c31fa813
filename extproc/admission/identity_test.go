package admission_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
	"github.com/weir-ai/weir/extproc/limits/redisstore"
	"github.com/weir-ai/weir/extproc/tokens"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

// stores are the two counter stores, each with the injected clock.
var stores = []struct {
	name string
	open func(t *testing.T, c *limitstest.Clock) limits.Store
}{
	{"memory", func(_ *testing.T, c *limitstest.Clock) limits.Store { return limits.NewMemory(c.Func()) }},
	{"redis", func(t *testing.T, c *limitstest.Clock) limits.Store {
		cl := redistest.Start(t).Client()
		t.Cleanup(func() { cl.Close() })
		return redisstore.New(cl, redisstore.Options{Clock: c.Func()})
	}},
}

// spy records what the real store answered to each settle.
type spy struct {
	limits.Store
	mu      sync.Mutex
	settled []bool
}

func (s *spy) Settle(ctx context.Context, id string, cs []limits.Counter, u limits.Usage) (bool, error) {
	ok, err := s.Store.Settle(ctx, id, cs, u)
	s.mu.Lock()
	s.settled = append(s.settled, ok)
	s.mu.Unlock()
	return ok, err
}

// newGate is a gate as server.go builds it: the fixed TTL is only the
// fallback for a request that names no timeout.
func newGate(st limits.Store, c *limitstest.Clock) *admission.Gate {
	return &admission.Gate{
		Store:  st,
		Tokens: tokens.UpperBound{BytesPerToken: 1},
		Clock:  c.Func(),
		TTL:    config.DefaultBackendTimeout + time.Minute,
	}
}

func oneSlotKey(t *testing.T) *vkey.Key {
	t.Helper()
	sec, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &vkey.Key{Hash: sec.Hash(), Limits: limits.Limits{MaxParallel: 1}}
}

var body = []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)

type step struct {
	at   time.Duration
	held bool
}

// TestReservationLifetimeFollowsTimeout: a request's reservation lives as
// long as its backend's timeout plus the grace period. A stream on a 30m
// backend still holds its parallel slot after the old fixed lifetime of
// six minutes, and its settle at 20 minutes is accepted; a request on a
// short backend, or one that names no timeout, is freed at its own
// deadline.
func TestReservationLifetimeFollowsTimeout(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		// at each offset from the reservation, in order: is the slot
		// still held?
		held []step
		// settle at this offset; accepted when before the deadline
		settleAt time.Duration
		accepted bool
	}{
		{"30m backend outlives the default", 30 * time.Minute,
			[]step{{time.Minute, true}, {6*time.Minute + time.Second, true}, {7 * time.Minute, true}, {30 * time.Minute, true}},
			20 * time.Minute, true},
		{"30m backend freed after timeout and grace", 30 * time.Minute,
			[]step{{30*time.Minute + admission.ReservationGrace, false}},
			31 * time.Minute, false},
		{"2m backend freed at 3m", 2 * time.Minute,
			[]step{{2 * time.Minute, true}, {3 * time.Minute, false}},
			4 * time.Minute, false},
		{"no timeout falls back to the gate's TTL", 0,
			[]step{{5 * time.Minute, true}, {6 * time.Minute, false}},
			7 * time.Minute, false},
	}
	for _, st := range stores {
		for _, tt := range cases {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				clock := limitstest.NewClock(limitstest.T0)
				sp := &spy{Store: st.open(t, clock)}
				g := newGate(sp, clock)
				p := &admission.Policy{Completion: 16}
				key := oneSlotKey(t)
				long := &admission.Ticket{Key: key}
				if err := g.Reserve(context.Background(), p, long, &admission.Request{ID: "long", Timeout: tt.timeout, Body: body, Model: "m"}); err != nil {
					t.Fatal(err)
				}
				for _, s := range tt.held {
					at, held := s.at, s.held
					clock.Set(limitstest.T0.Add(at))
					probe := &admission.Ticket{Key: key}
					err := g.Reserve(context.Background(), p, probe, &admission.Request{ID: "probe-" + at.String(), Timeout: time.Second, Body: body, Model: "m"})
					if held != errors.Is(err, errs.ErrRateLimited) {
						t.Fatalf("at %s: probe err = %v, want slot held %v", at, err, held)
					}
					if err == nil {
						// Release the probe's slot.
						g.Settle(context.Background(), probe, "probe-"+at.String(), &admission.Outcome{Status: 500})
					}
				}
				clock.Set(limitstest.T0.Add(tt.settleAt))
				sp.settled = nil
				g.Settle(context.Background(), long, "long", &admission.Outcome{Status: 200})
				if len(sp.settled) != 1 || sp.settled[0] != tt.accepted {
					t.Fatalf("settle at %s accepted %v, want %v", tt.settleAt, sp.settled, tt.accepted)
				}
			})
		}
	}
}

// TestReservationIDs: an empty or reused reservation id is refused with an
// error, never admitted unreserved.
func TestReservationIDs(t *testing.T) {
	for _, st := range stores {
		for _, tt := range []struct {
			name  string
			ids   []string
			admit []bool
		}{
			{"fresh ids", []string{"a", "b"}, []bool{true, true}},
			{"reused id", []string{"a", "a", "a"}, []bool{true, false, false}},
			{"empty id", []string{"", ""}, []bool{false, false}},
		} {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				clock := limitstest.NewClock(limitstest.T0)
				g := newGate(st.open(t, clock), clock)
				p := &admission.Policy{Completion: 16}
				key := &vkey.Key{Hash: oneSlotKey(t).Hash, Limits: limits.Limits{RPM: 100}}
				for i, id := range tt.ids {
					tk := &admission.Ticket{Key: key}
					err := g.Reserve(context.Background(), p, tk, &admission.Request{ID: id, Timeout: time.Minute, Body: body, Model: "m"})
					if (err == nil) != tt.admit[i] || tk.Reserved != tt.admit[i] {
						t.Fatalf("request %d (id %q): err=%v reserved=%v, want admitted %v", i, id, err, tk.Reserved, tt.admit[i])
					}
					if err != nil && errs.Status(err) != 500 {
						t.Fatalf("request %d: status %d for %v, want 500", i, errs.Status(err), err)
					}
				}
			})
		}
	}
}

// TestLimitsIDSharesCounters: keys with the same limits id share their
// counters, so a key rotated by the controller (a new hash, the same id)
// keeps its predecessor's spend and rate limits instead of starting
// afresh; keys without one are counted by their hash, apart.
func TestLimitsIDSharesCounters(t *testing.T) {
	cases := []struct {
		name         string
		first, other string // limits ids
		otherHeld    bool   // the second key finds the one slot taken
	}{
		{"same id shares the slot", "vk-uid-1", "vk-uid-1", true},
		{"different ids are apart", "vk-uid-1", "vk-uid-2", false},
		{"no id: counted by hash", "", "", false},
		{"one id, one hash", "vk-uid-1", "", false},
	}
	for _, st := range stores {
		for _, tt := range cases {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				clock := limitstest.NewClock(limitstest.T0)
				g := newGate(st.open(t, clock), clock)
				p := &admission.Policy{Completion: 16}
				a, b := oneSlotKey(t), oneSlotKey(t)
				a.LimitsID, b.LimitsID = tt.first, tt.other
				if err := g.Reserve(context.Background(), p, &admission.Ticket{Key: a}, &admission.Request{ID: "a", Timeout: time.Minute, Body: body, Model: "m"}); err != nil {
					t.Fatal(err)
				}
				err := g.Reserve(context.Background(), p, &admission.Ticket{Key: b}, &admission.Request{ID: "b", Timeout: time.Minute, Body: body, Model: "m"})
				if held := errors.Is(err, errs.ErrRateLimited); held != tt.otherHeld {
					t.Fatalf("second key: err = %v, want slot held %v", err, tt.otherHeld)
				}
			})
		}
	}
}
