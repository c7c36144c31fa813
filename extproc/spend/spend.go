// Package spend carries per-request spend records from the request path to
// durable sinks, exactly once in effect.
//
// The request path appends a [Record] to a queue (a Redis Stream shared by
// replicas, package redisstream, or the in-memory [Queue] for one replica)
// and moves on. A [Writer] reads batches, writes them to a [Sink], and only
// then removes them from the queue, so a crash loses nothing.
//
// Two guarantees, by kind of sink:
//   - A [Committer] (the admin API's Redis spend book) records a batch and
//     removes it from the queue in one atomic step: a record counts if and
//     only if it left the queue, so it counts once whatever happens
//     between, and however late a dead writer's batch comes back.
//   - A plain [Sink] (a JSONL file, stdout, the in-memory book) is written
//     before the batch leaves the queue. A writer that dies in between
//     delivers the batch again: at least once. Each drops the request ids
//     it recently wrote ([Seen], bounded), which covers a redelivery that
//     comes soon, not one after a long outage of every writer.
package spend

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Record is one request's spend.
type Record struct {
	// RequestID is Weir's own random id for the request, unique: sinks
	// deduplicate by it. It is also the limits reservation's id.
	RequestID string `json:"request_id"`
	// ClientRequestID is the x-request-id the request arrived with, for
	// correlation with Envoy's and the client's logs. Clients can repeat
	// or forge it; nothing is keyed on it.
	ClientRequestID  string    `json:"client_request_id,omitempty"`
	Time             time.Time `json:"time"`
	KeyPrefix        string    `json:"key_prefix,omitempty"` // hash prefix, never the key
	UserID           string    `json:"user_id,omitempty"`
	TeamID           string    `json:"team_id,omitempty"`
	OrgID            string    `json:"organization_id,omitempty"`
	Model            string    `json:"model"`
	Backend          string    `json:"backend,omitempty"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	CostMicroUSD     int64     `json:"cost_micro_usd"`
	LatencyMs        int64     `json:"latency_ms"`
	Status           int       `json:"status"`
	// Partial marks a stream that ended before the provider's final usage
	// (the client left, the upstream cut it, or no usage event came): it
	// was settled at the larger of the usage observed and the tokens
	// delivered, plus the prompt estimate when no prompt usage was seen.
	Partial bool `json:"partial,omitempty"`
}

// Message is a record as delivered by a [Source], with the id to
// acknowledge it by.
type Message struct {
	ID     string
	Record Record
}

// Source is a queue a [Writer] consumes.
type Source interface {
	// Read returns up to max unacknowledged messages: first those delivered
	// before and never acknowledged (a crashed writer's), then new ones. It
	// may block until one arrives or ctx ends.
	Read(ctx context.Context, max int) ([]Message, error)
	Ack(ctx context.Context, ids ...string) error
}

// Sink stores records durably. Write must not return before the records
// are durable, and should drop records whose RequestID it recently wrote:
// a batch comes back when a writer failed before it left the source.
type Sink interface {
	Write(ctx context.Context, recs []Record) error
}

// Committer is a sink that removes what it records from the source in the
// same atomic step, so that a record counts exactly when it leaves the
// source: the records of msgs still pending at src are recorded and
// acknowledged together, and those no longer pending (another writer took
// them over and committed them) are skipped. After an error either both
// happened or neither, so a retry of the batch is always safe.
type Committer interface {
	Commit(ctx context.Context, src Source, msgs []Message) error
}

// Writer moves records from a Source to its sinks: Sink first (at least
// once), then Commit, which also removes the batch from the Source; with
// no Commit the Writer acknowledges the batch itself after Sink.
type Writer struct {
	Source Source
	Sink   Sink      // optional
	Commit Committer // optional; at most one, as only one can own the ack
	Batch  int       // records per read; default 256
	Log    *slog.Logger
}

// Step moves one batch and returns its size.
func (w *Writer) Step(ctx context.Context) (int, error) {
	n := w.Batch
	if n <= 0 {
		n = 256
	}
	msgs, err := w.Source.Read(ctx, n)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	if w.Sink != nil {
		recs := make([]Record, len(msgs))
		for i, m := range msgs {
			recs[i] = m.Record
		}
		if err := w.Sink.Write(ctx, recs); err != nil {
			// Not acknowledged: the batch comes back on the next read.
			return 0, fmt.Errorf("spend: sink: %w", err)
		}
	}
	if w.Commit != nil {
		// The plain sinks go first: were the commit first, a failure of
		// theirs would come after the batch left the source, and lose it.
		if err := w.Commit.Commit(ctx, w.Source, msgs); err != nil {
			return 0, fmt.Errorf("spend: commit: %w", err)
		}
		return len(msgs), nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if err := w.Source.Ack(ctx, ids...); err != nil {
		return 0, fmt.Errorf("spend: ack: %w", err)
	}
	return len(msgs), nil
}

// Run moves batches until ctx ends, backing off after errors.
func (w *Writer) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if _, err := w.Step(ctx); err != nil && ctx.Err() == nil {
			w.log().Warn("spend: writer", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
	return ctx.Err()
}

func (w *Writer) log() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}
