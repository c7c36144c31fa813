package book_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/spend/redisstream"
	"github.com/weir-ai/weir/test/redistest"
)

const (
	testStream = "{weir}:spend"
	testGroup  = "writers"
)

// writerFor is how the spend pipeline wires the Redis book behind a
// Redis stream (as extproc's services do).
func writerFor(src spend.Source, b *book.Redis) *spend.Writer {
	return &spend.Writer{Source: src, Commit: b, Batch: 10}
}

// ackLost is a source whose writer dies after the book has the batch
// and before the stream's acknowledgement.
type ackLost struct{ *redisstream.Stream }

func (ackLost) Ack(context.Context, ...string) error { return errors.New("writer died before the ack") }

// stalled is a source whose writer stalls after reading a batch: while
// it is away, run happens (another writer takes the batch over), then
// the stalled writer goes on with the batch it read.
type stalled struct {
	*redisstream.Stream
	run func()
}

func (s *stalled) Read(ctx context.Context, max int) ([]spend.Message, error) {
	msgs, err := s.Stream.Read(ctx, max)
	if s.run != nil && len(msgs) > 0 {
		s.run()
		s.run = nil
	}
	return msgs, err
}

// replyLost drops the reply of the first script that succeeds: the
// script ran in Redis, but the connection broke before the writer heard.
type replyLost struct{ fired bool }

func (h *replyLost) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *replyLost) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *replyLost) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := strings.ToLower(cmd.Name()); err == nil && !h.fired && (name == "evalsha" || name == "eval") {
			h.fired = true
			return &net.OpError{Op: "read", Err: errors.New("connection reset (test)")}
		}
		return err
	}
}

// fastForward moves Redis past every expiry: whatever has a TTL is gone,
// as it is after all writers stayed down longer than any of them.
func fastForward(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ttl, err := c.PTTL(ctx, k).Result(); err == nil && ttl > 0 {
			if err := c.Del(ctx, k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSpendBookCountsOnceAfterLateRedelivery: a writer puts a batch in
// the Redis book and dies (or stalls) before the batch leaves the
// stream; the batch is redelivered after every dedup horizon has passed.
// The book counts each record once, whatever the delay.
func TestSpendBookCountsOnceAfterLateRedelivery(t *testing.T) {
	tests := []struct {
		name string
		// first runs the writer that dies or stalls.
		first func(t *testing.T, c *redis.Client, b *book.Redis)
	}{
		{"ack lost", func(t *testing.T, c *redis.Client, b *book.Redis) {
			// The book's commit is the ack: a writer has no separate ack
			// left to lose, so this one no longer fails.
			_, _ = writerFor(ackLost{redisstream.New(c, testStream, testGroup, "w1")}, b).Step(context.Background())
		}},
		{"reply of the write lost", func(t *testing.T, c *redis.Client, b *book.Redis) {
			c.AddHook(&replyLost{})
			if _, err := writerFor(redisstream.New(c, testStream, testGroup, "w1"), b).Step(context.Background()); err == nil {
				t.Fatal("the lost reply reported no error")
			}
		}},
		{"stalled writer finishes after a takeover", func(t *testing.T, c *redis.Client, b *book.Redis) {
			src := &stalled{Stream: redisstream.New(c, testStream, testGroup, "w1")}
			src.run = func() {
				// A second writer resumes w1's pending entries (as
				// XAUTOCLAIM does after ClaimIdle) and writes them.
				w2 := writerFor(redisstream.New(c, testStream, testGroup, "w1"), b)
				if _, err := w2.Step(context.Background()); err != nil {
					t.Fatal(err)
				}
				fastForward(t, c)
			}
			if _, err := writerFor(src, b).Step(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			c := srv.Client()
			defer c.Close()
			ctx := context.Background()
			const n = 25
			want := produce(t, c, n, 1)
			b := book.NewRedis(c, "")
			tt.first(t, c, b)
			// Every writer stays down past every horizon, then one comes
			// back under the dead one's name and resumes its entries.
			fastForward(t, c)
			c2 := srv.Client()
			defer c2.Close()
			drain(t, c2, writerFor(redisstream.New(c2, testStream, testGroup, "w1"), b), n)
			for _, tot := range []struct {
				scope book.Scope
				id    string
			}{{book.ScopeGlobal, ""}, {book.ScopeKey, "abc"}, {book.ScopeModel, "m"}} {
				if got, err := b.Total(ctx, tot.scope, tot.id); err != nil || got != want {
					t.Errorf("%s total %d (%v), want %d: each record once", tot.scope, got, err, want)
				}
			}
			logs, err := b.Logs(ctx, book.LogFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) != n {
				t.Errorf("%d logs, want %d", len(logs), n)
			}
			if x, err := c2.XLen(ctx, testStream).Result(); err != nil || x != 0 {
				t.Errorf("%d entries left in the stream (%v), want 0", x, err)
			}
		})
	}
}

// produce appends n records to the test stream through a producer of its
// own, each of them appends times (more than once: the producer's reply
// was lost and the client retried), and returns what they cost in all:
// the total the book must show when each record counts once. Record i
// costs i+1 micro-dollars, so a record counted twice or lost shows.
func produce(t *testing.T, c *redis.Client, n, appends int) (want int64) {
	t.Helper()
	ctx := context.Background()
	producer := redisstream.New(c, testStream, testGroup, "producer")
	if err := producer.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)
	for i := range n {
		r := spend.Record{RequestID: fmt.Sprint("req-", i), Time: t0.Add(time.Duration(i) * time.Second),
			KeyPrefix: "abc", Model: "m", CostMicroUSD: int64(i + 1)}
		want += r.CostMicroUSD
		for range appends {
			if err := producer.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	return want
}

// drain steps w until the stream has nothing left to write, at most twice
// per record, and fails the test if records remain.
func drain(t *testing.T, c *redis.Client, w *spend.Writer, n int) {
	t.Helper()
	for range 2 * n {
		if left(t, c) == 0 {
			break
		}
		if _, err := w.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if l := left(t, c); l != 0 {
		t.Fatalf("%d records never written", l)
	}
}

// left is the stream's records not yet written: pending or never read.
func left(t *testing.T, c *redis.Client) int {
	t.Helper()
	g, err := c.XInfoGroups(context.Background(), testStream).Result()
	if err != nil || len(g) != 1 {
		t.Fatalf("groups %v %v", g, err)
	}
	return int(g[0].Pending + g[0].Lag)
}

// TestSpendBookProducerRetryCountsOnce: a producer whose append timed out
// after Redis took it appends again (the client's retry); the stream
// holds the record once, so the book counts it once, even when the
// writers read it only after every horizon.
func TestSpendBookProducerRetryCountsOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	const n = 20
	want := produce(t, c, n, 2) // the first reply was lost; the client retries
	fastForward(t, c)
	b := book.NewRedis(c, "")
	drain(t, c, writerFor(redisstream.New(c, testStream, testGroup, "w1"), b), n)
	if got, err := b.Total(context.Background(), book.ScopeGlobal, ""); err != nil || got != want {
		t.Errorf("global total %d (%v), want %d: each record once", got, err, want)
	}
}
