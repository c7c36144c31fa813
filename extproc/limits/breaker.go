package limits

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
)

// BreakerState is a [Breaker]'s state. Its value is what the
// weir_redis_breaker_state gauge reports.
type BreakerState int32

const (
	// BreakerClosed: calls go to the store.
	BreakerClosed BreakerState = iota
	// BreakerOpen: the store failed Failures times in a row; calls are
	// answered by the fail mode without trying it until the next probe.
	BreakerOpen
	// BreakerHalfOpen: one probe call is at the store; every other call
	// is still answered without it.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// Defaults for a [Breaker]'s zero fields.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerProbe    = 2 * time.Second
)

// Breaker stops calls to a shared store that keeps failing, so that a
// Redis outage costs each request nothing instead of the client's timeout.
// After Failures consecutive failures it opens; once open it lets one call
// through per Probe interval (half-open), and closes when that call
// succeeds.
//
// The closed state, the only one on the healthy request path, costs one
// atomic load per call; the mutex is taken only around a failure or a
// state change.
type Breaker struct {
	Failures int           // consecutive failures that open it; <= 0: DefaultBreakerFailures
	Probe    time.Duration // time between probes while open; <= 0: DefaultBreakerProbe
	Clock    budget.Clock  // nil: time.Now
	// OnChange, if set, is called on every state change, with the
	// breaker's lock held: it must not call back into the breaker.
	OnChange func(from, to BreakerState)

	state atomic.Int32
	fails atomic.Int32
	mu    sync.Mutex
	next  time.Time // while open: when the next probe may go
}

// call is one admitted call's ticket.
type call struct{ probe bool }

// allow reports whether a call may go to the store. A nil breaker allows
// everything.
func (b *Breaker) allow() (call, bool) {
	if b == nil || BreakerState(b.state.Load()) == BreakerClosed {
		return call{}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		return call{}, true
	case BreakerOpen:
		if !b.Clock.Now().Before(b.next) {
			b.set(BreakerHalfOpen)
			return call{probe: true}, true
		}
	}
	return call{}, false
}

// done records an admitted call's outcome: nil is a success.
func (b *Breaker) done(c call, err error) {
	if b == nil {
		return
	}
	if err == nil {
		if b.fails.Load() != 0 {
			b.fails.Store(0)
		}
		if c.probe || BreakerState(b.state.Load()) != BreakerClosed {
			b.mu.Lock()
			// Any success is proof the store answers: a call admitted
			// before the breaker opened may close it too.
			b.set(BreakerClosed)
			b.mu.Unlock()
		}
		return
	}
	n := b.fails.Add(1)
	if !c.probe && int(n) < b.failures() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.probe || BreakerState(b.state.Load()) == BreakerClosed {
		b.next = b.Clock.Now().Add(b.probe())
		b.set(BreakerOpen)
	}
}

// abandon releases an admitted call that ended without a verdict (its
// caller went away): a probe's turn passes to the next call at once.
func (b *Breaker) abandon(c call) {
	if b == nil || !c.probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) == BreakerHalfOpen {
		b.set(BreakerOpen) // b.next has passed: the next call probes
	}
}

// retryAfter is how long a refused client should wait: until the next
// probe, at least a second.
func (b *Breaker) retryAfter() time.Duration {
	if b == nil {
		return time.Second
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d := time.Second
	switch BreakerState(b.state.Load()) {
	case BreakerOpen:
		d = b.next.Sub(b.Clock.Now())
	case BreakerHalfOpen:
		d = b.probe()
	}
	return max(d, time.Second)
}

// set changes the state; b.mu is held.
func (b *Breaker) set(to BreakerState) {
	from := BreakerState(b.state.Swap(int32(to)))
	if from != to && b.OnChange != nil {
		b.OnChange(from, to)
	}
}

// State returns the current state.
func (b *Breaker) State() BreakerState {
	if b == nil {
		return BreakerClosed
	}
	return BreakerState(b.state.Load())
}

func (b *Breaker) failures() int {
	if b.Failures <= 0 {
		return DefaultBreakerFailures
	}
	return b.Failures
}

// ProbeInterval is the time between probes while open.
func (b *Breaker) ProbeInterval() time.Duration { return b.probe() }

func (b *Breaker) probe() time.Duration {
	if b.Probe <= 0 {
		return DefaultBreakerProbe
	}
	return b.Probe
}
