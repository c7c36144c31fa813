package spend

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tidwall/gjson"
)

// JSONL is a [Sink] that appends one JSON line per record to a file and
// fsyncs before returning. On open it reads the request ids already in the
// file, so records redelivered after a crash are not written twice.
type JSONL struct {
	mu   sync.Mutex
	f    *os.File
	seen *Seen
}

// OpenJSONL opens (or creates) path for appending.
func OpenJSONL(path string) (*JSONL, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spend: %w", err)
	}
	s := &JSONL{f: f, seen: &Seen{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// Only the id is needed: no full unmarshal of a long file.
		if id := gjson.GetBytes(sc.Bytes(), "request_id"); id.Type == gjson.String {
			s.seen.Add(id.Str)
		}
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("spend: reading %s: %w", path, err)
	}
	return s, nil
}

// Write implements [Sink].
func (s *JSONL) Write(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf, ids, err := encodeNew(recs, s.seen)
	if err != nil || len(buf) == 0 {
		return err
	}
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("spend: write: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spend: sync: %w", err)
	}
	for _, id := range ids {
		s.seen.Add(id)
	}
	return nil
}

// Close closes the file.
func (s *JSONL) Close() error { return s.f.Close() }

// Stream is a [Sink] that writes JSON lines to w (stdout). It drops
// duplicates it has seen in this process; across a restart it is at least
// once, as a pipe cannot be read back.
type Stream struct {
	mu   sync.Mutex
	w    io.Writer
	seen *Seen
}

// NewStream returns a sink writing to w.
func NewStream(w io.Writer) *Stream { return &Stream{w: w, seen: &Seen{}} }

// Write implements [Sink].
func (s *Stream) Write(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf, ids, err := encodeNew(recs, s.seen)
	if err != nil || len(buf) == 0 {
		return err
	}
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("spend: write: %w", err)
	}
	for _, id := range ids {
		s.seen.Add(id)
	}
	return nil
}

// encodeNew encodes the records not in seen, once each even when a batch
// holds one twice.
func encodeNew(recs []Record, seen *Seen) ([]byte, []string, error) {
	var buf []byte
	var ids []string
	batch := map[string]struct{}{}
	for _, r := range recs {
		if seen.Has(r.RequestID) {
			continue
		}
		if _, ok := batch[r.RequestID]; ok {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, nil, fmt.Errorf("spend: encode %s: %w", r.RequestID, err)
		}
		buf = append(append(buf, b...), '\n')
		batch[r.RequestID] = struct{}{}
		ids = append(ids, r.RequestID)
	}
	return buf, ids, nil
}
