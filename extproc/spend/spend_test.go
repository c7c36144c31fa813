package spend_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/spendtest"
)

func TestQueueExactlyOnce(t *testing.T) {
	q := spend.NewQueue()
	spendtest.RunExactlyOnce(t, q, func() spend.Source { return q }, q.Len)
}

// recorder logs what a writer does with a batch, in order.
type recorder struct {
	log     []string
	failOn  string
	pending []spend.Message
}

func (r *recorder) do(what string) error {
	r.log = append(r.log, what)
	if what == r.failOn {
		return errors.New(what + " failed")
	}
	return nil
}

func (r *recorder) Read(context.Context, int) ([]spend.Message, error) { return r.pending, nil }
func (r *recorder) Ack(context.Context, ...string) error               { return r.do("ack") }

type recSink struct{ r *recorder }

func (s recSink) Write(context.Context, []spend.Record) error { return s.r.do("write") }

type recCommitter struct{ r *recorder }

func (c recCommitter) Commit(_ context.Context, src spend.Source, msgs []spend.Message) error {
	if src != spend.Source(c.r) || len(msgs) != 1 {
		return errors.New("wrong source or batch")
	}
	return c.r.do("commit")
}

// TestWriterStep: the plain sinks get a batch before it leaves the
// source, through the committer when there is one (the writer never acks
// then), or the writer's own ack; a failure stops the batch from leaving.
func TestWriterStep(t *testing.T) {
	tests := []struct {
		name           string
		sink, commit   bool
		failOn         string
		want           []string
		wantN          int
		wantErrContain string
	}{
		{"sink then ack", true, false, "", []string{"write", "ack"}, 1, ""},
		{"sink then commit", true, true, "", []string{"write", "commit"}, 1, ""},
		{"commit alone", false, true, "", []string{"commit"}, 1, ""},
		{"sink fails: no commit", true, true, "write", []string{"write"}, 0, "sink"},
		{"commit fails", true, true, "commit", []string{"write", "commit"}, 0, "commit"},
		{"ack fails", true, false, "ack", []string{"write", "ack"}, 0, "ack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{failOn: tt.failOn, pending: []spend.Message{{ID: "1", Record: spend.Record{RequestID: "r1"}}}}
			w := &spend.Writer{Source: r}
			if tt.sink {
				w.Sink = recSink{r}
			}
			if tt.commit {
				w.Commit = recCommitter{r}
			}
			n, err := w.Step(context.Background())
			if n != tt.wantN || (err == nil) != (tt.wantErrContain == "") || err != nil && !strings.Contains(err.Error(), tt.wantErrContain) {
				t.Errorf("Step = %d, %v; want %d and an error about %q", n, err, tt.wantN, tt.wantErrContain)
			}
			if !slices.Equal(r.log, tt.want) {
				t.Errorf("did %q, want %q", r.log, tt.want)
			}
		})
	}
}
