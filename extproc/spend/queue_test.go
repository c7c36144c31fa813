package spend_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/weir-ai/weir/extproc/spend"
)

// recorder is a sink that counts every record it is given, without
// deduplicating, so a record sent twice shows; it fails while down.
type recorder struct {
	down bool
	got  map[string]int
}

func (r *recorder) Write(_ context.Context, recs []spend.Record) error {
	if r.down {
		return errors.New("sink down")
	}
	if r.got == nil {
		r.got = map[string]int{}
	}
	for _, rec := range recs {
		r.got[rec.RequestID]++
	}
	return nil
}

// TestSinkFailsThenRecovers: one of two sinks fails for a while, then
// recovers. Within the queue's bound, every record reaches both sinks
// exactly once, and the healthy sink is never handed a record twice.
// Past the bound the oldest waiting records are dropped and counted, and
// the rest still arrive exactly once.
func TestSinkFailsThenRecovers(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		during      int // records appended while the sink is down
		wantDropped int64
	}{
		{"within the bound", 1000, 600, 0},
		{"past the bound", 100, 600, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			q := spend.NewQueue()
			q.Max = tc.max
			q.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
			healthy, flaky := &recorder{}, &recorder{down: true}
			w := &spend.Writer{Source: q, Sink: &spend.Fanout{Sinks: []spend.Sink{healthy, flaky}}, Batch: 50}
			for i := range tc.during {
				if err := q.Append(ctx, spend.Record{RequestID: fmt.Sprint("r", i)}); err != nil {
					t.Fatal(err)
				}
				if i%100 == 0 {
					if _, err := w.Step(ctx); err == nil {
						t.Fatal("a write to a sink that is down succeeded")
					}
				}
			}
			flaky.down = false
			for q.Len() > 0 {
				if _, err := w.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := q.Dropped(); got != tc.wantDropped {
				t.Errorf("dropped %d, want %d", got, tc.wantDropped)
			}
			want := tc.during - int(tc.wantDropped)
			for name, s := range map[string]*recorder{"healthy": healthy, "flaky": flaky} {
				if len(s.got) != want {
					t.Errorf("%s sink has %d records, want %d", name, len(s.got), want)
				}
				for id, n := range s.got {
					if n != 1 {
						t.Errorf("%s sink got %s %d times", name, id, n)
					}
				}
			}
		})
	}
}
