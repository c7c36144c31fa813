package keystore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

// replica is a keyring kept by a Syncer, with a channel of the versions it
// loaded: tests wait on it, not on sleeps.
type replica struct {
	ring   *vkey.Keyring
	synced chan int64
	tick   chan time.Time
}

func startReplica(t *testing.T, ctx context.Context, store Store, static ...*vkey.Key) *replica {
	r := &replica{ring: vkey.NewKeyring(), synced: make(chan int64, 100), tick: make(chan time.Time)}
	s := &Syncer{Store: store, Ring: r.ring, Static: static, Tick: r.tick,
		OnSync: func(v int64, _ int) { r.synced <- v }}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("syncer: %v", err)
		}
	})
	r.wait(t, 0) // the initial load
	return r
}

// wait blocks until the replica has loaded version v or later. The 5 s is
// a deadline for a broken feed, not a delay anything relies on.
func (r *replica) wait(t *testing.T, v int64) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-r.synced:
			if got >= v {
				return
			}
		case <-deadline:
			t.Fatalf("replica did not load version %d", v)
		}
	}
}

func newKey(t *testing.T) (vkey.Secret, *KeyRecord) {
	sec, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return sec, &KeyRecord{Key: vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix()}, CreatedAt: time.Now()}
}

func TestPropagationRedis(t *testing.T) {
	srv := redistest.Start(t)
	ca, cb := srv.Client(), srv.Client()
	defer ca.Close()
	defer cb.Close()
	a, b := NewRedis(ca, ""), NewRedis(cb, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	staticSec, static := newKey(t)
	rb := startReplica(t, ctx, b, &static.Key)
	if _, err := rb.ring.Authenticate(staticSec); err != nil {
		t.Fatalf("static key: %v", err)
	}

	// A change through replica A's store reaches replica B's keyring by
	// the pub/sub announcement alone: B's poll ticker never fires here.
	sec, k := newKey(t)
	if err := a.PutKey(ctx, k, true); err != nil {
		t.Fatal(err)
	}
	v, _ := a.Version(ctx)
	rb.wait(t, v)
	if _, err := rb.ring.Authenticate(sec); err != nil {
		t.Fatalf("B does not see A's new key: %v", err)
	}

	k.Blocked = true
	if err := a.PutKey(ctx, k, false); err != nil {
		t.Fatal(err)
	}
	v, _ = a.Version(ctx)
	rb.wait(t, v)
	got, err := rb.ring.Authenticate(sec)
	if err != nil || !got.Blocked {
		t.Fatalf("B does not see the block: %v %+v", err, got)
	}

	if err := a.DeleteKey(ctx, k.Hash); err != nil {
		t.Fatal(err)
	}
	v, _ = a.Version(ctx)
	rb.wait(t, v)
	if _, err := rb.ring.Authenticate(sec); !errors.Is(err, vkey.ErrUnknown) {
		t.Fatalf("B still accepts a deleted key: %v", err)
	}
	if _, err := rb.ring.Authenticate(staticSec); err != nil {
		t.Fatalf("static key lost: %v", err)
	}
}

// TestPollCatchesMissedAnnouncement: a change whose announcement B never
// received (written behind the store's back, as if B was disconnected) is
// loaded at B's next poll, which the test drives by hand.
func TestPollCatchesMissedAnnouncement(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	store := NewRedis(c, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rb := startReplica(t, ctx, store)

	sec, k := newKey(t)
	// Same write as PutKey, without the PUBLISH.
	raw := `{"token":"` + k.Hash.String() + `","created_at":"2026-01-01T00:00:00Z"}`
	if err := c.HSet(ctx, "{weir}:admin:keys", k.Hash.String(), raw).Err(); err != nil {
		t.Fatal(err)
	}
	v, err := c.Incr(ctx, "{weir}:admin:version").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, "{weir}:admin:feed", redis.Z{Score: float64(v), Member: "k:" + k.Hash.String()}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.ring.Authenticate(sec); err == nil {
		t.Fatal("loaded before any signal")
	}
	rb.tick <- time.Now()
	rb.wait(t, v)
	if _, err := rb.ring.Authenticate(sec); err != nil {
		t.Fatalf("poll did not load the key: %v", err)
	}
}

func TestPropagationMemory(t *testing.T) {
	store := NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r1, r2 := startReplica(t, ctx, store), startReplica(t, ctx, store)
	sec, k := newKey(t)
	if err := store.PutKey(ctx, k, true); err != nil {
		t.Fatal(err)
	}
	v, _ := store.Version(ctx)
	for _, r := range []*replica{r1, r2} {
		r.wait(t, v)
		if _, err := r.ring.Authenticate(sec); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.PutKey(ctx, k, true); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
}
