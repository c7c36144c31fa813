package spend

import (
	"context"
	"errors"
)

// Fanout is a [Sink] that writes every batch to each of its sinks. A
// batch that fails on one sink is not acknowledged, so it comes back to
// all of them; each sink is idempotent by request id, so the ones that
// took it count it once. From the in-memory [Queue] the batch comes back
// at once, within any sink's [Seen]; from a Redis stream a minute later,
// within the Redis spend book's dedup, which each retry keeps alive.
type Fanout []Sink

// Write implements [Sink].
func (f Fanout) Write(ctx context.Context, recs []Record) error {
	var errs []error
	for _, s := range f {
		errs = append(errs, s.Write(ctx, recs))
	}
	return errors.Join(errs...)
}
