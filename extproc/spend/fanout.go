package spend

import (
	"context"
	"errors"
	"sync"
)

// Fanout is a [Sink] that writes every batch to each of Sinks. A batch
// that fails on one sink is not acknowledged, so it comes back; the sinks
// that already took it are not asked again. So a sink that fails for a
// while costs the others nothing, and none of them relies on its own
// deduplication, which may be bounded in time (the Redis spend book's),
// to absorb the retries.
//
// Each sink's progress is a [Seen] of the ids it wrote, so it is bounded:
// a record that comes back after FanoutWindow newer ones (a dead writer's
// entries, claimed from a Redis stream a minute later) meets the sink's
// own deduplication instead.
type Fanout struct {
	Sinks []Sink

	mu   sync.Mutex
	took []Seen // per sink: the ids it wrote
}

// FanoutWindow is the ids per generation of each sink's progress: a
// failed batch retried from the in-memory queue comes back at once, well
// within it. It costs about 8 MB per sink.
const FanoutWindow = 50_000

// Write implements [Sink].
func (f *Fanout) Write(ctx context.Context, recs []Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.took == nil {
		f.took = make([]Seen, len(f.Sinks))
		for i := range f.took {
			f.took[i].Window = FanoutWindow
		}
	}
	var errs []error
	todo := make([]Record, 0, len(recs))
	for i, s := range f.Sinks {
		todo = todo[:0]
		for _, r := range recs {
			if !f.took[i].Has(r.RequestID) {
				todo = append(todo, r)
			}
		}
		if len(todo) == 0 {
			continue
		}
		if err := s.Write(ctx, todo); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range todo {
			f.took[i].Add(r.RequestID)
		}
	}
	return errors.Join(errs...)
}
