package spend

import (
	"context"
	"log/slog"
	"math/bits"
	"strconv"
	"sync"
)

// Queue is the in-memory [Source] for a single replica. It has the
// stream's delivery semantics (delivered messages stay pending until
// acknowledged) but not its durability: a process crash loses what is
// queued.
//
// It is bounded: while a sink fails, records wait here, and past Max the
// oldest waiting record is dropped, counted ([Queue.Dropped]) and logged
// at error. Accounting never blocks the request path, and a sink that
// recovers within Max records' time loses nothing.
type Queue struct {
	// Max is the most records held (waiting and delivered); zero means
	// DefaultQueueMax. Set it before the first Append.
	Max int
	// Log receives the drop errors; nil means slog.Default().
	Log *slog.Logger

	mu      sync.Mutex
	next    int64
	pending []Message // delivered, not acknowledged
	ready   []Message
	dropped int64
	wake    chan struct{}
}

// DefaultQueueMax holds 10 seconds of records at 10,000 requests/s,
// about 40 MB (a record is some 400 bytes in memory).
const DefaultQueueMax = 100_000

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{wake: make(chan struct{}, 1)} }

// Append implements the producer side. A full queue drops its oldest
// waiting record (or, when every record held is being written, this one).
func (q *Queue) Append(_ context.Context, r Record) error {
	q.mu.Lock()
	q.next++
	m := Message{ID: strconv.FormatInt(q.next, 10), Record: r}
	lost, full := "", len(q.ready)+len(q.pending) >= q.max()
	switch {
	case !full:
		q.ready = append(q.ready, m)
	case len(q.ready) > 0:
		lost = q.ready[0].Record.RequestID
		q.ready[0] = Message{}
		q.ready = append(q.ready[1:], m)
	default:
		lost = r.RequestID
	}
	if full {
		q.dropped++
	}
	n := q.dropped
	q.mu.Unlock()
	// Logged at 1, 2, 4, 8, … drops: an outage is visible at once without
	// a line per request.
	if full && bits.OnesCount64(uint64(n)) == 1 {
		q.log().Error("spend: queue full while the sink fails; dropping the oldest records", "dropped", n, "max", q.max(), "request_id", lost)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// Read implements [Source]. It blocks until a message is ready or ctx ends.
func (q *Queue) Read(ctx context.Context, max int) ([]Message, error) {
	for {
		q.mu.Lock()
		src := &q.ready
		if len(q.pending) > 0 {
			// Redeliver first, as XREADGROUP with id 0 does.
			out := append([]Message(nil), q.pending[:min(max, len(q.pending))]...)
			q.mu.Unlock()
			return out, nil
		}
		if n := min(max, len(*src)); n > 0 {
			out := append([]Message(nil), (*src)[:n]...)
			*src = (*src)[n:]
			q.pending = append(q.pending, out...)
			q.mu.Unlock()
			return out, nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.wake:
		}
	}
}

// Ack implements [Source].
func (q *Queue) Ack(_ context.Context, ids ...string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	done := make(map[string]bool, len(ids))
	for _, id := range ids {
		done[id] = true
	}
	kept := q.pending[:0]
	for _, m := range q.pending {
		if !done[m.ID] {
			kept = append(kept, m)
		}
	}
	q.pending = kept
	return nil
}

// Dropped is how many records a full queue dropped.
func (q *Queue) Dropped() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

func (q *Queue) max() int {
	if q.Max <= 0 {
		return DefaultQueueMax
	}
	return q.Max
}

func (q *Queue) log() *slog.Logger {
	if q.Log == nil {
		return slog.Default()
	}
	return q.Log
}

// Len is how many messages are not acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) + len(q.ready)
}
