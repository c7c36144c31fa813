package keystore

import (
	"context"
	"errors"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/test/redistest"
)

// backend is one Store implementation, built fresh for a test.
type backend struct {
	name  string
	store func(t *testing.T) Store
}

// backends are both stores: tests hold them to the same answers.
func backends() []backend {
	return []backend{
		{"memory", func(*testing.T) Store { return NewMemory() }},
		{"redis", func(t *testing.T) Store {
			c := redistest.Start(t).Client()
			t.Cleanup(func() { c.Close() })
			return NewRedis(c, "")
		}},
	}
}

// TestStoreCompareAndSet holds both stores to the same answers.
func TestStoreCompareAndSet(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			store := b.store(t)
			ctx := context.Background()
			_, k := newKey(t)
			k.Alias, k.TeamID = "a", "t"
			if err := store.PutKey(ctx, k, true); err != nil || k.Revision != 1 {
				t.Fatalf("create: %v revision %d", err, k.Revision)
			}
			stale := *k
			k.RPM = 1
			if err := store.PutKey(ctx, k, false); err != nil || k.Revision != 2 {
				t.Fatalf("update: %v revision %d", err, k.Revision)
			}
			stale.TPM = 1
			if err := store.PutKey(ctx, &stale, false); !errors.Is(err, ErrConflict) || errs.Status(err) != 409 {
				t.Fatalf("stale write: %v", err)
			}
			got, err := store.GetKey(ctx, k.Hash)
			if err != nil || got.RPM != 1 || got.TPM != 0 || got.Revision != 2 {
				t.Fatalf("after the stale write: %v %+v", err, got)
			}
			_, other := newKey(t)
			other.Alias, other.TeamID = "a", "t"
			if err := store.PutKey(ctx, other, true); !errors.Is(err, ErrAliasTaken) || errs.Status(err) != 409 {
				t.Fatalf("duplicate alias: %v", err)
			}
			other.TeamID = "t2"
			if err := store.PutKey(ctx, other, true); err != nil {
				t.Fatalf("same alias, other owner: %v", err)
			}
			if err := store.DeleteKey(ctx, k.Hash); err != nil {
				t.Fatal(err)
			}
			_, again := newKey(t)
			again.Alias, again.TeamID = "a", "t"
			if err := store.PutKey(ctx, again, true); err != nil {
				t.Fatalf("alias not freed by delete: %v", err)
			}
			if err := store.PutKey(ctx, k, false); !IsNotFound(err) {
				t.Fatalf("update of a deleted key: %v", err)
			}
			// Teams and users are compare-and-set too.
			tm := &Team{TeamID: "t"}
			if err := store.PutTeam(ctx, tm, true); err != nil {
				t.Fatal(err)
			}
			staleTeam := *tm
			if err := store.PutTeam(ctx, tm, false); err != nil {
				t.Fatal(err)
			}
			if err := store.PutTeam(ctx, &staleTeam, false); !errors.Is(err, ErrConflict) {
				t.Fatalf("stale team write: %v", err)
			}
		})
	}
}

// TestScriptKeysOneSlot: the Redis store's scripts declare every key they
// touch and keep them in one hash slot, as Redis Cluster requires. The
// spend book's script is checked in spend/book.
func TestScriptKeysOneSlot(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	keys := NewRedis(c, "")
	_, k := newKey(t)
	scripts := srv.CheckScripts(t, func() {
		if err := keys.PutKey(ctx, k, true); err != nil {
			t.Fatal(err)
		}
		if err := keys.PutTeam(ctx, &Team{TeamID: "t"}, true); err != nil {
			t.Fatal(err)
		}
		if err := keys.DeleteKey(ctx, k.Hash); err != nil {
			t.Fatal(err)
		}
	})
	if len(scripts) < 3 {
		t.Fatalf("%d scripts ran, want at least 3", len(scripts))
	}
}
