// Package spendtest checks a spend queue and sink end to end: every record
// lands exactly once across producer retries and a writer crash.
package spendtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/spend"
)

// Producer is the request side of a queue.
type Producer interface {
	Append(context.Context, spend.Record) error
}

// crashingSink writes, then fails once: a writer that dies after the sink
// has the records and before it acknowledges them.
type crashingSink struct {
	spend.Sink
	crashed bool
}

func (c *crashingSink) Write(ctx context.Context, recs []spend.Record) error {
	if err := c.Sink.Write(ctx, recs); err != nil {
		return err
	}
	if !c.crashed {
		c.crashed = true
		return errors.New("crash before ack")
	}
	return nil
}

// RunExactlyOnce appends records (some twice, as a producer retry does),
// crashes a writer between sink and ack, starts a new writer on the same
// file, and checks every record is in the file exactly once.
func RunExactlyOnce(t *testing.T, p Producer, newSource func() spend.Source, pendingLen func() int) {
	ctx := context.Background()
	const n = 100
	for i := range n {
		r := spend.Record{RequestID: fmt.Sprint("req-", i), Time: time.Unix(1700000000, 0).UTC(), Model: "m", CostMicroUSD: int64(i)}
		if err := p.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := p.Append(ctx, r); err != nil { // producer retry
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "spend.jsonl")
	sink, err := spend.OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	w := &spend.Writer{Source: newSource(), Sink: &crashingSink{Sink: sink}, Batch: 30}
	if _, err := w.Step(ctx); err == nil {
		t.Fatal("crash not reported")
	}
	sink.Close()
	// A new process: reopen the file, new writer, same consumer.
	sink, err = spend.OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	w = &spend.Writer{Source: newSource(), Sink: sink, Batch: 30}
	for pendingLen() > 0 {
		if _, err := w.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r spend.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		count[r.RequestID]++
	}
	if len(count) != n {
		t.Fatalf("%d distinct records, want %d", len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("%s written %d times", id, c)
		}
	}
}
