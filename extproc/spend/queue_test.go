package spend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/spend"
)

// flaky is a sink that fails while down.
type flaky struct {
	spend.Sink
	down bool
}

func (f *flaky) Write(ctx context.Context, recs []spend.Record) error {
	if f.down {
		return errors.New("sink down")
	}
	return f.Sink.Write(ctx, recs)
}

// TestSinkFailsThenRecovers: one of two sinks fails for a while, then
// recovers, while the writer retries the same batch. Within the queue's
// bound every record reaches both sinks exactly once. Past the bound the
// oldest waiting records are dropped and counted, and the rest still
// arrive exactly once.
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
			var healthy, recovering bytes.Buffer
			down := &flaky{Sink: spend.NewStream(&recovering), down: true}
			w := &spend.Writer{Source: q, Sink: spend.Fanout{spend.NewStream(&healthy), down}, Batch: 50}
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
			down.down = false
			for q.Len() > 0 {
				if _, err := w.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := q.Dropped(); got != tc.wantDropped {
				t.Errorf("dropped %d, want %d", got, tc.wantDropped)
			}
			want := tc.during - int(tc.wantDropped)
			for name, buf := range map[string]*bytes.Buffer{"healthy": &healthy, "recovering": &recovering} {
				got := map[string]int{}
				for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
					got[gjson.Get(line, "request_id").Str]++
				}
				if len(got) != want {
					t.Errorf("%s sink has %d records, want %d", name, len(got), want)
				}
				for id, n := range got {
					if n != 1 {
						t.Errorf("%s sink has %s %d times", name, id, n)
					}
				}
			}
		})
	}
}
