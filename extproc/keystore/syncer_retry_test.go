package keystore

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/vkey"
)

// downStore fails its next `fail` version reads, as a store that is down.
type downStore struct {
	Store
	fail atomic.Int32
}

var errStoreDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (d *downStore) Version(ctx context.Context) (int64, error) {
	if d.fail.Add(-1) >= 0 {
		return 0, errStoreDown
	}
	return d.Store.Version(ctx)
}

// Since fails like Version: after the first load the syncer reads the
// change feed, not the version.
func (d *downStore) Since(ctx context.Context, v int64) (*Delta, error) {
	if d.fail.Add(-1) >= 0 {
		return nil, errStoreDown
	}
	return d.Store.Since(ctx, v)
}

// backoffClock hands each requested backoff to the test, which fires it.
type backoffClock struct {
	waits chan time.Duration
	fire  chan time.Time
}

func (b *backoffClock) after(d time.Duration) <-chan time.Time {
	b.waits <- d
	return b.fire
}

// next returns the backoff the syncer asked for; the 5 s is a deadline for
// a syncer that stopped retrying, not a delay anything relies on.
func (b *backoffClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-b.waits:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the syncer did not retry")
		return 0
	}
}

// TestSyncerRetriesFirstLoad: a store that is down at start-up delays the
// keys, never loses them. The syncer retries with capped exponential
// backoff, calls OnSync (what readiness waits for) only once a load
// succeeds, and then serves the keys without a restart.
func TestSyncerRetriesFirstLoad(t *testing.T) {
	ms := 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		fails int32
		want  []time.Duration
	}{
		{"store up", 0, nil},
		{"down for three tries", 3, []time.Duration{2 * ms, 4 * ms, 8 * ms}},
		{"down long: capped", 8, []time.Duration{2 * ms, 4 * ms, 8 * ms, 16 * ms, 32 * ms, 50 * ms, 50 * ms, 50 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMemory()
			sec, k := newKey(t)
			if err := mem.PutKey(context.Background(), k, true); err != nil {
				t.Fatal(err)
			}
			store := &downStore{Store: mem}
			store.fail.Store(tc.fails)
			clk := &backoffClock{waits: make(chan time.Duration), fire: make(chan time.Time)}
			synced := make(chan int64, 10)
			ring := vkey.NewKeyring()
			s := &Syncer{Store: store, Ring: ring, Tick: make(chan time.Time), After: clk.after,
				MinBackoff: 2 * ms, MaxBackoff: 50 * ms, OnSync: func(v int64, _ int) { synced <- v }}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			var got []time.Duration
			for range tc.want {
				got = append(got, clk.next(t))
				if len(synced) > 0 {
					t.Errorf("OnSync while the store is down")
				}
				if _, err := ring.Authenticate(sec); err == nil {
					t.Errorf("key authenticates before any load")
				}
				clk.fire <- time.Time{}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("backoffs %v, want %v", got, tc.want)
			}
			(&replica{synced: synced}).wait(t, 0)
			if _, err := ring.Authenticate(sec); err != nil {
				t.Errorf("key after recovery: %v", err)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v, want context.Canceled", err)
			}
		})
	}
}

// TestSyncerRecoversMidRun: a store that fails after the first load keeps
// the loaded keys, backs off, and picks up changes made
// meanwhile once it answers; the backoff starts over for the next outage.
func TestSyncerRecoversMidRun(t *testing.T) {
	mem := NewMemory()
	store := &downStore{Store: mem}
	clk := &backoffClock{waits: make(chan time.Duration), fire: make(chan time.Time)}
	tick := make(chan time.Time)
	synced := make(chan int64, 10)
	ring := vkey.NewKeyring()
	s := &Syncer{Store: store, Ring: ring, Tick: tick, After: clk.after,
		MinBackoff: time.Second, MaxBackoff: 4 * time.Second, OnSync: func(v int64, _ int) { synced <- v }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	r := &replica{synced: synced}
	r.wait(t, 0)
	for outage := range 2 {
		store.fail.Store(3)
		var got []time.Duration
		// The tick starts the first failing try, unless a pending
		// announcement (the key put below, last round) already did.
		select {
		case tick <- time.Time{}:
		case d := <-clk.waits:
			got = append(got, d)
		}
		for i := range 3 {
			if len(got) <= i {
				got = append(got, clk.next(t))
			}
			if ring.Len() != outage {
				t.Errorf("outage %d: %d keys during the outage, want the %d loaded", outage, ring.Len(), outage)
			}
			if i < 2 {
				clk.fire <- time.Time{}
			}
		}
		if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
			t.Errorf("outage %d: backoffs %v, want %v", outage, got, want)
		}
		// A key created during the outage is loaded by the first try that
		// reaches the store.
		sec, k := newKey(t)
		if err := mem.PutKey(context.Background(), k, true); err != nil {
			t.Fatal(err)
		}
		v, _ := mem.Version(context.Background())
		clk.fire <- time.Time{}
		select {
		case tick <- time.Time{}:
		case d := <-clk.waits:
			t.Fatalf("outage %d: still backing off (%v) after the store answered", outage, d)
		}
		r.wait(t, v)
		if _, err := ring.Authenticate(sec); err != nil {
			t.Errorf("outage %d: key created during the outage: %v", outage, err)
		}
	}
}
