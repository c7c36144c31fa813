package limits

import (
	"context"
	"sync"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
)

// GaugeRetry is the Retry-After for a refused parallel slot: a slot frees
// when any request in flight ends, which no store can predict.
const GaugeRetry = time.Second

// Memory is the single-replica [Store]. It keeps the same semantics as the
// Redis store, computed in milliseconds like the script, so that one test
// suite holds both to the same answers.
type Memory struct {
	clock budget.Clock

	mu      sync.Mutex
	fixed   map[string]*fixedCounter
	sliding map[string]*slidingLog
	gauges  map[string]map[string]int64 // key -> id -> deadline (ms)
	// records holds reservations in flight only: a record is deleted at
	// its settle and swept after its deadline, so memory follows the
	// requests in flight, not the requests served.
	records map[string]*record
	calls   int
}

type fixedCounter struct {
	v       int64
	expires int64 // ms; 0 for never
	idle    int64 // ms; the idle deadline ([Counter.Idle]), 0 for none
}

// gone reports whether the counter has expired at now.
func (f *fixedCounter) gone(now int64) bool {
	return (f.expires != 0 && now >= f.expires) || (f.idle != 0 && now >= f.idle)
}

type slidingLog struct {
	entries []slidingEntry // by time
	total   int64
	span    int64 // ms, for the sweep
}

type slidingEntry struct {
	at     int64
	id     string
	amount int64
}

type record struct {
	deadline int64 // ms
	amounts  []held
}

type held struct {
	key    string
	amount int64
}

// NewMemory returns an empty store. A nil clock means [time.Now].
func NewMemory(clock budget.Clock) *Memory {
	return &Memory{
		clock:   clock,
		fixed:   map[string]*fixedCounter{},
		sliding: map[string]*slidingLog{},
		gauges:  map[string]map[string]int64{},
		records: map[string]*record{},
	}
}

// sweepEvery is how many reservations pass between sweeps of expired state;
// it bounds memory without a goroutine.
const sweepEvery = 4096

// Reserve implements [Store].
func (m *Memory) Reserve(_ context.Context, id string, cs []Counter, ttl time.Duration) (Result, error) {
	now := m.clock.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls++; m.calls%sweepEvery == 0 {
		m.sweep(now)
	}
	if r, ok := m.records[id]; ok {
		if now < r.deadline {
			return Result{Duplicate: true, Refused: -1}, nil
		}
		delete(m.records, id)
	}
	res := Result{Refused: -1, States: make([]State, len(cs))}
	for i := range cs {
		c := &cs[i]
		used, reset := m.state(c, now)
		res.States[i] = State{Used: used, Reset: ms(reset)}
		if res.Refused < 0 && c.Limit >= 0 && used+c.Amount > c.Limit {
			res.Refused = i
			res.RetryAfter = ms(m.retry(c, used, reset, now))
		}
	}
	if res.Refused >= 0 {
		return res, nil
	}
	deadline := now + ttl.Milliseconds()
	rec := &record{deadline: deadline, amounts: make([]held, len(cs))}
	for i := range cs {
		c := &cs[i]
		rec.amounts[i] = held{c.Key, c.Amount}
		switch c.Window {
		case Fixed:
			f := m.fixed[c.Key]
			if f == nil {
				f = &fixedCounter{}
				if !c.End.IsZero() {
					f.expires = c.End.UnixMilli()
				}
				m.fixed[c.Key] = f
			}
			f.v += c.Amount
			if c.Idle > 0 {
				// As the script: the idle deadline only grows, and never
				// falls before this reservation's own deadline.
				f.idle = max(f.idle, now+max(c.Idle.Milliseconds(), ttl.Milliseconds()))
			}
		case Sliding:
			l := m.sliding[c.Key]
			if l == nil {
				l = &slidingLog{span: c.Span.Milliseconds()}
				m.sliding[c.Key] = l
			}
			l.add(slidingEntry{now, id, c.Amount})
		case Gauge:
			g := m.gauges[c.Key]
			if g == nil {
				g = map[string]int64{}
				m.gauges[c.Key] = g
			}
			g[id] = deadline
		}
		res.States[i].Used += c.Amount
	}
	m.records[id] = rec
	res.OK = true
	return res, nil
}

// state cleans a counter's expired part and returns what it holds and how
// long until it frees (ms).
func (m *Memory) state(c *Counter, now int64) (used, reset int64) {
	switch c.Window {
	case Fixed:
		f := m.fixed[c.Key]
		if f != nil && f.gone(now) {
			delete(m.fixed, c.Key)
			f = nil
		}
		if !c.End.IsZero() {
			reset = max(c.End.UnixMilli()-now, 0)
		}
		if f == nil {
			return 0, reset
		}
		if f.idle != 0 && (reset == 0 || f.idle-now < reset) {
			reset = f.idle - now
		}
		return f.v, reset
	case Sliding:
		l := m.sliding[c.Key]
		if l == nil {
			return 0, c.Span.Milliseconds()
		}
		l.expire(now - c.Span.Milliseconds())
		if len(l.entries) == 0 {
			return 0, c.Span.Milliseconds()
		}
		return l.total, l.entries[0].at + c.Span.Milliseconds() - now
	case Gauge:
		g := m.gauges[c.Key]
		for id, d := range g {
			if d <= now {
				delete(g, id)
			}
		}
		return int64(len(g)), 0
	}
	return 0, 0
}

// retry is how long until the counter can take c.Amount (ms).
func (m *Memory) retry(c *Counter, used, reset, now int64) int64 {
	switch c.Window {
	case Sliding:
		if c.Amount > c.Limit {
			return c.Span.Milliseconds()
		}
		freed := int64(0)
		for _, e := range m.sliding[c.Key].entries {
			freed += e.amount
			if used-freed+c.Amount <= c.Limit {
				return e.at + c.Span.Milliseconds() - now
			}
		}
		return c.Span.Milliseconds()
	case Gauge:
		return GaugeRetry.Milliseconds()
	}
	return reset
}

func (l *slidingLog) add(e slidingEntry) {
	// A clock that steps back must not break the order that expiry relies on.
	i := len(l.entries)
	for i > 0 && l.entries[i-1].at > e.at {
		i--
	}
	l.entries = append(l.entries, slidingEntry{})
	copy(l.entries[i+1:], l.entries[i:])
	l.entries[i] = e
	l.total += e.amount
}

// settle changes the amount of id's entry by delta. It searches from the
// end: a settle follows its reserve closely. An entry left with nothing (a
// released request) no longer counts: the Redis script deletes it, and
// here it is dropped at once when last, or once it reaches the front
// ([slidingLog.expire]), so that it never sets Reset; in between it costs
// a refusal's walk nothing, as it frees nothing.
func (l *slidingLog) settle(id string, delta int64) {
	for j := len(l.entries) - 1; j >= 0; j-- {
		if l.entries[j].id != id {
			continue
		}
		l.entries[j].amount += delta
		l.total += delta
		if l.entries[j].amount == 0 {
			// The empty id marks it released, and frees the string.
			l.entries[j].id = ""
			if j == len(l.entries)-1 {
				l.entries = l.entries[:j]
			}
		}
		return
	}
}

// expire drops entries at or before cutoff, like ZREMRANGEBYSCORE -inf cutoff,
// and released entries (empty id) at the front, which the script deleted.
// Reslicing is O(1); the backing array is compacted only when its dead
// prefix outgrows the live part, so a busy window is not copied per call.
func (l *slidingLog) expire(cutoff int64) {
	n := 0
	for n < len(l.entries) && (l.entries[n].at <= cutoff || l.entries[n].id == "") {
		l.total -= l.entries[n].amount
		l.entries[n] = slidingEntry{} // release the id string
		n++
	}
	if n == 0 {
		return
	}
	l.entries = l.entries[n:]
	if cap(l.entries) > 2*len(l.entries)+64 {
		l.entries = append(make([]slidingEntry, 0, 2*len(l.entries)+8), l.entries...)
	}
}

// Settle implements [Store].
func (m *Memory) Settle(_ context.Context, id string, cs []Counter, actual Usage) (bool, error) {
	now := m.clock.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.records[id]
	if rec == nil {
		return false, nil
	}
	// Settled or expired, the id is forgotten: a second settle finds
	// nothing, as does a late one, whose estimate stays charged (its slot
	// was freed at the deadline).
	delete(m.records, id)
	if now >= rec.deadline {
		return false, nil
	}
	for i := range cs {
		c := &cs[i]
		reserved, ok := rec.find(c.Key)
		if !ok {
			continue
		}
		delta := actual.Of(c.Dim) - reserved
		switch c.Window {
		case Fixed:
			if f := m.fixed[c.Key]; f != nil {
				f.v += delta
			}
		case Sliding:
			if l := m.sliding[c.Key]; l != nil {
				l.settle(id, delta)
			}
		case Gauge:
			delete(m.gauges[c.Key], id)
		}
	}
	return true, nil
}

func (r *record) find(key string) (int64, bool) {
	for _, h := range r.amounts {
		if h.key == key {
			return h.amount, true
		}
	}
	return 0, false
}

// sweep drops expired counters, and the records of reservations that
// vanished (never settled) once their deadline passed.
func (m *Memory) sweep(now int64) {
	for id, r := range m.records {
		if now >= r.deadline {
			delete(m.records, id)
		}
	}
	for k, f := range m.fixed {
		if f.gone(now) {
			delete(m.fixed, k)
		}
	}
	for k, g := range m.gauges {
		for id, d := range g {
			if d <= now {
				delete(g, id)
			}
		}
		if len(g) == 0 {
			delete(m.gauges, k)
		}
	}
	for k, l := range m.sliding {
		if l.expire(now - l.span); len(l.entries) == 0 {
			delete(m.sliding, k)
		}
	}
}

// Get returns what a counter holds, for tests and the admin API.
func (m *Memory) Get(_ context.Context, c Counter) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch c.Window {
	case Sliding:
		if l := m.sliding[c.Key]; l != nil {
			return l.total, nil
		}
	case Gauge:
		return int64(len(m.gauges[c.Key])), nil
	default:
		if f := m.fixed[c.Key]; f != nil {
			return f.v, nil
		}
	}
	return 0, nil
}

// Reservations is how many reservation records the store holds: those in
// flight, and vanished ones not yet swept.
func (m *Memory) Reservations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
