package spend

import (
	"context"
	"errors"
)

// Fanout is a [Sink] that writes every batch to each of its sinks. A
// batch that fails on one sink is not acknowledged, so it comes back to
// all of them; each drops the request ids it recently wrote ([Seen]), so
// the ones that took it write it once when it comes back to the same
// writer soon (from the in-memory [Queue], at once; from a Redis stream,
// at the writer's next read). A batch another replica's writer takes
// over reaches that replica's sinks too: at least once.
type Fanout []Sink

// Write implements [Sink].
func (f Fanout) Write(ctx context.Context, recs []Record) error {
	var errs []error
	for _, s := range f {
		errs = append(errs, s.Write(ctx, recs))
	}
	return errors.Join(errs...)
}
