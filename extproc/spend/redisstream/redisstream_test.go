package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/redisstream"
	"github.com/weir-ai/weir/extproc/spend/spendtest"
	"github.com/weir-ai/weir/test/redistest"
)

func TestStreamExactlyOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	producer := redisstream.New(c, "{weir}:spend", "writers", "w1")
	if err := producer.Init(ctx); err != nil {
		t.Fatal(err)
	}
	// Each writer process starts a fresh Stream under the same consumer
	// name and so resumes the entries the crashed one left pending.
	newSource := func() spend.Source { return redisstream.New(c, "{weir}:spend", "writers", "w1") }
	left := func() int {
		g, err := c.XInfoGroups(ctx, "{weir}:spend").Result()
		if err != nil || len(g) != 1 {
			t.Fatalf("groups %v %v", g, err)
		}
		return int(g[0].Pending + g[0].Lag)
	}
	spendtest.RunExactlyOnce(t, producer, newSource, left)
	// Acknowledged records leave the stream: it holds only what is not
	// written yet, so Redis memory does not grow with every request.
	if n, err := c.XLen(ctx, "{weir}:spend").Result(); err != nil || n != 0 {
		t.Fatalf("%d entries left in the stream (%v), want 0", n, err)
	}
}

// TestReadCreatesMissingGroup: a replica that started while Redis was
// down could not create the consumer group, and Redis may come back
// empty; records appended meanwhile must still reach the writer, not fail
// every read with NOGROUP.
func TestReadCreatesMissingGroup(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	s := redisstream.New(c, "{weir}:spend", "writers", "w1") // no Init
	for _, id := range []string{"r1", "r2"} {
		if err := s.Append(ctx, spend.Record{RequestID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 2 { // its own pending entries first, then new ones
		msgs, err := s.Read(ctx, 10)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		for _, m := range msgs {
			got = append(got, m.Record.RequestID)
		}
	}
	if len(got) != 2 || got[0] != "r1" || got[1] != "r2" {
		t.Errorf("read %v, want [r1 r2]", got)
	}
}

// TestAppendOnce: an append the client retries (its first reply timed out
// after Redis ran it) adds the record once; the guard is one set per 10
// seconds of append time, forgotten AppendDedup after its last append,
// declared and in the stream's slot.
func TestAppendOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	s := redisstream.New(c, "{weir}:spend", "writers", "w1")
	t0 := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	recs := []spend.Record{{RequestID: "r1", Time: t0}, {RequestID: "r2", Time: t0}}
	scripts := srv.CheckScripts(t, func() {
		for i, r := range recs {
			s.Now = func() time.Time { return t0.Add(time.Duration(i) * 15 * time.Second) }
			for range 2 { // a retry
				if err := s.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	if len(scripts) < 4 { // and the EVALSHA that found no script loaded
		t.Fatalf("%d scripts, want at least 4 appends", len(scripts))
	}
	if n, err := c.XLen(ctx, "{weir}:spend").Result(); err != nil || n != 2 {
		t.Fatalf("%d entries (%v), want 2", n, err)
	}
	sets, err := c.Keys(ctx, "{weir}:spend:appended:*").Result()
	if err != nil || len(sets) != 2 {
		t.Fatalf("guard sets %q (%v), want 2", sets, err)
	}
	for _, k := range sets {
		if ttl, err := c.TTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > redisstream.DefaultAppendDedup {
			t.Errorf("%s expires in %s (%v), want within %s", k, ttl, err, redisstream.DefaultAppendDedup)
		}
	}
}
