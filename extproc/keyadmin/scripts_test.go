package keyadmin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/keyadmin"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

// TestScriptKeysOneSlot: the admin store's and the spend book's scripts
// declare every key they touch (the spend book's dedup sets included) and
// keep them in one hash slot, as Redis Cluster requires.
func TestScriptKeysOneSlot(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	keys := keyadmin.NewRedis(c, "")
	book := keyadmin.NewRedisSpendBook(c, "")
	sec, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k := &keyadmin.KeyRecord{Key: vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix()}, CreatedAt: time.Now()}
	// Records across two 10-second spans: two dedup sets in one batch.
	t0 := time.Date(2026, 4, 15, 12, 0, 59, 0, time.UTC)
	var recs []spend.Record
	for i := range 4 {
		recs = append(recs, spend.Record{RequestID: fmt.Sprint("req", i), Time: t0.Add(time.Duration(i) * time.Second),
			KeyPrefix: "abc", TeamID: "t", UserID: "u", Model: "m", CostMicroUSD: 10})
	}
	scripts := srv.CheckScripts(t, func() {
		if err := keys.PutKey(ctx, k, true); err != nil {
			t.Fatal(err)
		}
		if err := keys.PutTeam(ctx, &keyadmin.Team{TeamID: "t"}, true); err != nil {
			t.Fatal(err)
		}
		if err := keys.DeleteKey(ctx, k.Hash); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a redelivered batch
			if err := book.Write(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
	})
	if len(scripts) < 5 {
		t.Fatalf("%d scripts ran, want at least 5", len(scripts))
	}
	if got, err := book.Total(ctx, keyadmin.ScopeGlobal, ""); err != nil || got != 40 {
		t.Fatalf("global spend %d, %v; want 40 (each record once)", got, err)
	}
}

// TestSpendDedupBounded: the spend book's dedup costs one set per 10
// seconds of records, each forgotten Dedup after its last write, not one key per
// request kept for days; a redelivery within that time still counts once.
func TestSpendDedupBounded(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	book := keyadmin.NewRedisSpendBook(c, "")
	book.Dedup = 2 * time.Minute
	t0 := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	const n = 3000
	var recs []spend.Record
	for i := range n {
		// 3000 requests over 3 minutes.
		recs = append(recs, spend.Record{RequestID: fmt.Sprint("r", i), Time: t0.Add(time.Duration(i) * 60 * time.Millisecond), Model: "m", CostMicroUSD: 1})
	}
	for i := 0; i < n; i += 250 {
		if err := book.Write(ctx, recs[i:i+250]); err != nil {
			t.Fatal(err)
		}
	}
	if err := book.Write(ctx, recs[1000:1500]); err != nil { // redelivered
		t.Fatal(err)
	}
	if got, err := book.Total(ctx, keyadmin.ScopeGlobal, ""); err != nil || got != n {
		t.Fatalf("global spend %d, %v; want %d", got, err, n)
	}
	seen, err := c.Keys(ctx, "{weir}:spend:seen*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 18 {
		t.Fatalf("%d dedup keys %q, want 18 (one per 10 s)", len(seen), seen)
	}
	for _, k := range seen {
		ttl, err := c.TTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > book.Dedup {
			t.Errorf("%s expires in %s, want within %s", k, ttl, book.Dedup)
		}
	}
}
