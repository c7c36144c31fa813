package redisstream_test

import (
	"context"
	"testing"

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
