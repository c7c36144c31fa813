package keystore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/vkey"
)

// counting counts full listings: an incremental sync makes none.
type counting struct {
	Store
	lists, teams atomic.Int64
}

func (c *counting) ListKeys(ctx context.Context) ([]*KeyRecord, error) {
	c.lists.Add(1)
	return c.Store.ListKeys(ctx)
}

func (c *counting) ListTeams(ctx context.Context) ([]*Team, error) {
	c.teams.Add(1)
	return c.Store.ListTeams(ctx)
}

// TestSyncIsIncremental: after the first load, a created, changed or
// deleted key reaches the keyring without listing every key, and teams
// and users are reread only when one of them changed. A static key shadowed
// by a stored key with the same hash comes back when the stored one goes.
func TestSyncIsIncremental(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			base := b.store(t)
			store := &counting{Store: base}
			ctx := context.Background()
			for range 3 {
				_, k := newKey(t)
				if err := store.PutKey(ctx, k, true); err != nil {
					t.Fatal(err)
				}
			}
			staticSec, static := newKey(t)
			static.Key.Models = []string{"from-config"}
			ring := vkey.NewKeyring()
			var subjects int
			sy := &Syncer{Store: store, Ring: ring, Static: []*vkey.Key{&static.Key},
				OnSubjects: func([]*Team, []*User) { subjects++ }}
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if ring.Len() != 4 || store.lists.Load() != 1 || subjects != 1 {
				t.Fatalf("first load: %d keys, %d listings, %d subject loads", ring.Len(), store.lists.Load(), subjects)
			}

			sync := func(step string) {
				t.Helper()
				if ok, err := sy.Sync(ctx); err != nil || !ok {
					t.Fatalf("%s: sync %v %v", step, ok, err)
				}
			}
			sec, k := newKey(t)
			if err := store.PutKey(ctx, k, true); err != nil {
				t.Fatal(err)
			}
			sync("create")
			if _, err := ring.Authenticate(sec); err != nil || ring.Len() != 5 {
				t.Fatalf("created key: %v, %d keys", err, ring.Len())
			}
			k.Blocked = true
			if err := store.PutKey(ctx, k, false); err != nil {
				t.Fatal(err)
			}
			sync("update")
			if got, _ := ring.Authenticate(sec); got == nil || !got.Blocked {
				t.Fatalf("update not applied: %+v", got)
			}
			if err := store.DeleteKey(ctx, k.Hash); err != nil {
				t.Fatal(err)
			}
			sync("delete")
			if _, err := ring.Authenticate(sec); !errors.Is(err, vkey.ErrUnknown) || ring.Len() != 4 {
				t.Fatalf("deleted key: %v, %d keys", err, ring.Len())
			}

			// A stored key with a static key's hash wins, and its deletion
			// brings the static key back.
			shadow := &KeyRecord{Key: vkey.Key{Hash: static.Hash, Models: []string{"from-store"}}}
			if err := store.PutKey(ctx, shadow, true); err != nil {
				t.Fatal(err)
			}
			sync("shadow")
			if got, _ := ring.Authenticate(staticSec); got == nil || got.Models[0] != "from-store" {
				t.Fatalf("stored key does not win: %+v", got)
			}
			if err := store.DeleteKey(ctx, static.Hash); err != nil {
				t.Fatal(err)
			}
			sync("unshadow")
			if got, _ := ring.Authenticate(staticSec); got == nil || got.Models[0] != "from-config" {
				t.Fatalf("static key not restored: %+v", got)
			}
			if n := store.lists.Load(); n != 1 || subjects != 1 {
				t.Fatalf("key changes listed every key (%d listings) or reloaded subjects (%d)", n, subjects)
			}

			// A team change hands teams and users over again, still
			// without listing keys.
			if err := store.PutTeam(ctx, &Team{TeamID: "t"}, true); err != nil {
				t.Fatal(err)
			}
			sync("team")
			if subjects != 2 || store.lists.Load() != 1 {
				t.Fatalf("team change: %d subject loads, %d listings", subjects, store.lists.Load())
			}
			if ok, err := sy.Sync(ctx); err != nil || ok {
				t.Fatalf("sync without a change: %v %v", ok, err)
			}
		})
	}
}

// TestSyncFallsBackToFullLoad: a replica that is further behind than the
// store's change feed reaches reloads everything, and converges.
func TestSyncFallsBackToFullLoad(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			base := b.store(t)
			setFeedLen(t, base, 4)
			store := &counting{Store: base}
			ctx := context.Background()
			ring := vkey.NewKeyring()
			sy := &Syncer{Store: store, Ring: ring}
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			var first vkey.Secret
			var firstRec *KeyRecord
			for i := range 10 {
				sec, k := newKey(t)
				if i == 0 {
					first, firstRec = sec, k
				}
				if err := store.PutKey(ctx, k, true); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.DeleteKey(ctx, firstRec.Hash); err != nil {
				t.Fatal(err)
			}
			if _, err := sy.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if ring.Len() != 9 || store.lists.Load() != 2 {
				t.Fatalf("%d keys after %d listings", ring.Len(), store.lists.Load())
			}
			if _, err := ring.Authenticate(first); !errors.Is(err, vkey.ErrUnknown) {
				t.Fatalf("deleted key kept: %v", err)
			}
		})
	}
}

// setFeedLen shortens a store's change feed, so a test can outrun it.
func setFeedLen(t *testing.T, s Store, n int) {
	switch s := s.(type) {
	case *Memory:
		s.FeedLen = n
	case *Redis:
		s.FeedLen = n
	default:
		t.Fatalf("store %T", s)
	}
}

// TestSyncFullEvery: the safety-net full reload runs once FullEvery has
// passed on the syncer's clock, and not before.
func TestSyncFullEvery(t *testing.T) {
	store := &counting{Store: NewMemory()}
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	sy := &Syncer{Store: store, Ring: vkey.NewKeyring(), FullEvery: time.Minute, Clock: func() time.Time { return now }}
	for _, step := range []struct {
		advance time.Duration
		lists   int64
	}{{0, 1}, {59 * time.Second, 1}, {time.Second, 2}, {30 * time.Second, 2}, {30 * time.Second, 3}} {
		now = now.Add(step.advance)
		if _, err := sy.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := store.lists.Load(); got != step.lists {
			t.Fatalf("after %v: %d full loads, want %d", step.advance, got, step.lists)
		}
	}
}
