package book_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/spend/redisstream"
	"github.com/weir-ai/weir/test/redistest"
)

// TestScriptKeysOneSlot: the book's commit script declares every key it
// touches (the spend stream it acknowledges included) and keeps them in
// one hash slot, as Redis Cluster requires. The key store's scripts are
// checked in keystore.
func TestScriptKeysOneSlot(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	b := book.NewRedis(c, "")
	stream := redisstream.New(c, "{weir}:spend", "writers", "w1")
	if err := stream.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 12, 0, 59, 0, time.UTC)
	for i := range 4 {
		r := spend.Record{RequestID: fmt.Sprint("req", i), Time: t0.Add(time.Duration(i) * time.Second),
			KeyPrefix: "abc", TeamID: "t", UserID: "u", Model: "m", CostMicroUSD: 10}
		if err := stream.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := stream.Read(ctx, 10)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("read %d, %v; want 4", len(msgs), err)
	}
	scripts := srv.CheckScripts(t, func() {
		for range 2 { // a redelivered batch
			if err := b.Commit(ctx, stream, msgs); err != nil {
				t.Fatal(err)
			}
		}
	})
	if len(scripts) < 2 {
		t.Fatalf("%d scripts ran, want at least 2", len(scripts))
	}
	if got, err := b.Total(ctx, book.ScopeGlobal, ""); err != nil || got != 40 {
		t.Fatalf("global spend %d, %v; want 40 (each record once)", got, err)
	}
}

// TestSpendBookKeepsNothingPerRequest: the book remembers no request ids
// to count a redelivered record once (leaving the stream is what says it
// was counted), so its keys are the totals, the capped logs and the
// stream, which holds only what is not written yet; nothing expires later.
func TestSpendBookKeepsNothingPerRequest(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	b := book.NewRedis(c, "")
	b.Keep = 100
	stream := redisstream.New(c, "{weir}:spend", "writers", "w1")
	if err := stream.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	const n = 3000
	for i := range n {
		r := spend.Record{RequestID: fmt.Sprint("r", i), Time: t0.Add(time.Duration(i) * 60 * time.Millisecond), Model: "m", CostMicroUSD: 1}
		if err := stream.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var again []spend.Message
	for written := 0; written < n; {
		msgs, err := stream.Read(ctx, 250)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(ctx, stream, msgs); err != nil {
			t.Fatal(err)
		}
		if written == 1000 {
			again = msgs
		}
		written += len(msgs)
	}
	if err := b.Commit(ctx, stream, again); err != nil { // redelivered
		t.Fatal(err)
	}
	if got, err := b.Total(ctx, book.ScopeGlobal, ""); err != nil || got != n {
		t.Fatalf("global spend %d, %v; want %d", got, err, n)
	}
	all, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range all {
		// The producer's retry guard, which expires in seconds
		// (redisstream's TestAppendOnce).
		if !strings.HasPrefix(k, "{weir}:spend:appended:") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if want := []string{"{weir}:spend", "{weir}:spend:logs", "{weir}:spend:totals"}; !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if l, err := c.LLen(ctx, "{weir}:spend:logs").Result(); err != nil || l != 100 {
		t.Errorf("%d logs (%v), want Keep = 100", l, err)
	}
	if x, err := c.XLen(ctx, "{weir}:spend").Result(); err != nil || x != 0 {
		t.Errorf("%d stream entries (%v), want 0", x, err)
	}
}

// TestSpendBookRefusesForeignSource: the book acknowledges only a Redis
// stream in its own hash slot; anything else is an error, and the batch
// stays at its source.
func TestSpendBookRefusesForeignSource(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	b := book.NewRedis(c, "")
	msgs := []spend.Message{{ID: "1", Record: spend.Record{RequestID: "r1", CostMicroUSD: 5}}}
	tests := []struct {
		name string
		src  spend.Source
	}{
		{"in-memory queue", spend.NewQueue()},
		{"stream in another slot", redisstream.New(c, "{other}:spend", "writers", "w1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Commit(ctx, tt.src, msgs); err == nil {
				t.Fatal("committed")
			}
			if got, err := b.Total(ctx, book.ScopeGlobal, ""); err != nil || got != 0 {
				t.Errorf("global spend %d (%v), want 0", got, err)
			}
		})
	}
}
