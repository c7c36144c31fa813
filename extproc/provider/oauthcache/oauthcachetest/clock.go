// Package oauthcachetest has test helpers for code built on oauthcache.
package oauthcachetest

import (
	"sync"
	"time"
)

// Clock is a manual clock for oauthcache.Options.Now and After. The
// cache's goroutine announces each wait on Waits (buffered) and then waits
// for Fire; a test reads Waits to know a step is done, moves the clock with
// Advance and lets the goroutine go on with Fire. Nothing sleeps.
type Clock struct {
	mu    sync.Mutex
	t     time.Time
	Waits chan time.Duration
	fire  chan time.Time
}

// NewClock returns a Clock set to start.
func NewClock(start time.Time) *Clock {
	return &Clock{t: start, Waits: make(chan time.Duration, 64), fire: make(chan time.Time)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// After records d on Waits and returns the channel Fire sends on.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.Waits <- d
	return c.fire
}

// Fire wakes the goroutine waiting in After, without moving the clock.
func (c *Clock) Fire() { c.fire <- c.Now() }

// NextWait returns the next wait the goroutine announced, or fails after
// timeout (a safety net against a hung test, not a sleep).
func (c *Clock) NextWait(timeout time.Duration) (time.Duration, bool) {
	select {
	case d := <-c.Waits:
		return d, true
	case <-time.After(timeout):
		return 0, false
	}
}
