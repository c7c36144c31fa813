package spend

import (
	"context"
	"strconv"
	"sync"
)

// Queue is the in-memory [Source] for a single replica. It has the
// stream's delivery semantics (delivered messages stay pending until
// acknowledged) but not its durability: a process crash loses what is
// queued.
type Queue struct {
	mu      sync.Mutex
	next    int64
	pending []Message // delivered, not acknowledged
	ready   []Message
	wake    chan struct{}
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{wake: make(chan struct{}, 1)} }

// Append implements the producer side.
func (q *Queue) Append(_ context.Context, r Record) error {
	q.mu.Lock()
	q.next++
	q.ready = append(q.ready, Message{ID: strconv.FormatInt(q.next, 10), Record: r})
	q.mu.Unlock()
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

// Len is how many messages are not acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) + len(q.ready)
}
