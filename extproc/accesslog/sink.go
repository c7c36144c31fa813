package accesslog

import (
	"io"
	"sync"
	"time"
)

// Sink defaults.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultBufferSize    = 64 << 10
	// pending is how many full buffers may wait for the writer before
	// Write blocks (backpressure rather than dropping lines).
	pending = 8
)

// Sink batches lines for a slow writer (stdout, a file, a pipe). Write
// only copies the line into a buffer under a short mutex; a single writer
// goroutine does the I/O, in order. A buffer is handed to it when it is
// full or when it has held data for the flush interval, and [Sink.Close]
// hands over what is left and waits for it to be written, so no line is
// lost on shutdown.
//
// If the writer falls more than a few buffers behind, Write blocks until
// it catches up: lines are never dropped.
type Sink struct {
	w        io.Writer
	size     int
	interval time.Duration

	mu     sync.Mutex
	buf    []byte
	armed  bool // the flush timer is pending
	closed bool
	timer  *time.Timer

	full chan []byte // buffers for the writer goroutine, in order
	free chan []byte // written buffers for reuse
	done chan struct{}
}

// NewSink starts a sink writing to w. interval <= 0 and size <= 0 mean the
// defaults. Close must be called to flush and stop it.
func NewSink(w io.Writer, interval time.Duration, size int) *Sink {
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	if size <= 0 {
		size = DefaultBufferSize
	}
	s := &Sink{
		w:        w,
		size:     size,
		interval: interval,
		buf:      make([]byte, 0, size),
		full:     make(chan []byte, pending),
		free:     make(chan []byte, pending+1),
		done:     make(chan struct{}),
	}
	s.timer = time.AfterFunc(time.Hour, s.tick)
	s.timer.Stop()
	go s.run()
	return s
}

// Write copies p into the buffer; it never returns an error. After Close
// it writes p through to the underlying writer.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.w.Write(p)
	}
	if len(s.buf) > 0 && len(s.buf)+len(p) > s.size {
		s.handOff()
	}
	s.buf = append(s.buf, p...)
	if !s.armed {
		s.armed = true
		s.timer.Reset(s.interval)
	}
	return len(p), nil
}

// handOff passes the current buffer to the writer goroutine. s.mu is held.
func (s *Sink) handOff() {
	s.full <- s.buf
	select {
	case b := <-s.free:
		s.buf = b
	default:
		s.buf = make([]byte, 0, s.size)
	}
}

// tick flushes on the interval.
func (s *Sink) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	if !s.closed && len(s.buf) > 0 {
		s.handOff()
	}
}

func (s *Sink) run() {
	defer close(s.done)
	for b := range s.full {
		_, _ = s.w.Write(b)
		if cap(b) <= 2*s.size {
			select {
			case s.free <- b[:0]:
			default:
			}
		}
	}
}

// Flush hands over buffered lines; they are written shortly after, in
// order. It does not wait for the write.
func (s *Sink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && len(s.buf) > 0 {
		s.handOff()
	}
}

// Close writes everything buffered and stops the writer goroutine. Later
// writes go straight to the underlying writer. It is safe to call more
// than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.timer.Stop()
	if len(s.buf) > 0 {
		s.full <- s.buf
		s.buf = nil
	}
	close(s.full)
	<-s.done
	return nil
}
