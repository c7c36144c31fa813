package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
)

// FailMode is what a replica does when the shared store is unreachable.
type FailMode string

const (
	// FailOpen serves requests, counts them in a local [Memory] store
	// (limits then hold per replica, starting from zero), and replays
	// their usage into the shared store once it answers again
	// ([Guard.Reconcile]). Availability over exactness.
	FailOpen FailMode = "fail_open"
	// FailClosed refuses every request with 503 while the store is down.
	// Exactness over availability.
	FailClosed FailMode = "fail_closed"
)

// MaxBacklog bounds what a [Guard] keeps for reconciliation during a long
// outage; past it the oldest entries are dropped (and counted).
const MaxBacklog = 100_000

// Guard is a [Store] that applies a [FailMode] around a shared store.
type Guard struct {
	Primary Store
	Local   *Memory // fail_open's counters; required for FailOpen
	Mode    FailMode
	Log     *slog.Logger
	Clock   budget.Clock // nil: time.Now
	// Breaker, if set, keeps calls away from a Primary that keeps
	// failing: the fail mode answers at once instead of after the store's
	// timeout. Its Clock should be Clock.
	Breaker *Breaker
	// Ping, if set, is the probe [Guard.Probe] sends while the breaker is
	// open (a Redis PING). Like Fresh, it should not use the client that
	// lived through the outage.
	Ping func(context.Context) error
	// Fresh, if set, opens the primary anew, on a connection of its own,
	// and returns it with the func that closes it. A probe that failed is
	// tried once more there before it counts: a client that lived
	// through an outage can keep failing after the store is back. go-redis,
	// after PoolSize failed dials in a row, answers every call that needs
	// a new connection with the last dial error until its own redial
	// (once a second) succeeds, and a pooled connection can be dead after
	// a failover. Judged by that client, the breaker would stay open a
	// whole probe interval longer while the store answers.
	Fresh func() (Store, func())

	mu      sync.Mutex
	local   map[string]struct{} // ids reserved locally
	backlog []pending
	dropped int
}

// pending is usage the primary has not seen yet.
type pending struct {
	id     string
	cs     []Counter
	actual Usage
	// replay: served locally; charge its usage to the primary. Otherwise a
	// settle of a primary reservation that failed; retry it.
	replay bool
}

// Reserve implements [Store].
func (g *Guard) Reserve(ctx context.Context, id string, cs []Counter, ttl time.Duration) (Result, error) {
	if c, ok := g.Breaker.allow(); ok {
		res, err := g.Primary.Reserve(ctx, id, cs, ttl)
		err = g.again(ctx, c, err, func(st Store) (err error) {
			res, err = st.Reserve(ctx, id, cs, ttl)
			return err
		})
		if err == nil || ctx.Err() != nil {
			g.record(ctx, c, err)
			return res, err
		}
		g.Breaker.done(c, err)
		g.log().Warn("limits: store unreachable", "mode", g.Mode, "breaker", g.Breaker.State(), "err", err)
	}
	if g.Mode != FailOpen || g.Local == nil {
		// The store's error may name addresses; the client gets only the
		// sentinel's text, and when to come back: the next probe.
		return Result{Refused: -1}, &errs.RetryAfterError{
			Err:   errs.Refuse(errs.RuleStoreUnavailable, fmt.Errorf("%w: limits store unreachable", errs.ErrUnavailable)),
			After: g.Breaker.retryAfter(),
		}
	}
	res, err := g.Local.Reserve(ctx, id, cs, ttl)
	if err != nil {
		return res, err
	}
	res.Degraded = true
	if res.OK && !res.Duplicate {
		g.mu.Lock()
		if g.local == nil {
			g.local = map[string]struct{}{}
		}
		g.local[id] = struct{}{}
		g.mu.Unlock()
	}
	return res, nil
}

// Settle implements [Store]. A settle the primary cannot take is kept for
// [Guard.Reconcile] in either mode, so that the estimate is corrected once
// the store is back.
func (g *Guard) Settle(ctx context.Context, id string, cs []Counter, actual Usage) (bool, error) {
	g.mu.Lock()
	_, local := g.local[id]
	delete(g.local, id)
	g.mu.Unlock()
	if local {
		ok, err := g.Local.Settle(ctx, id, cs, actual)
		if ok {
			g.push(pending{id: id, cs: cs, actual: actual, replay: true})
		}
		return ok, err
	}
	ok, err := g.primarySettle(ctx, id, cs, actual)
	if err != nil {
		g.push(pending{id: id, cs: cs, actual: actual})
		return false, fmt.Errorf("limits: settle %s queued for reconciliation: %w", id, err)
	}
	return ok, nil
}

// errBreakerOpen is a call the breaker kept from the store.
var errBreakerOpen = errors.New("limits: store unreachable (circuit breaker open)")

// primarySettle and primaryReserve are the primary's methods behind the
// breaker, for settles and reconciliation, which have no fail mode: a
// refused call is retried later.
func (g *Guard) primarySettle(ctx context.Context, id string, cs []Counter, actual Usage) (bool, error) {
	c, ok := g.Breaker.allow()
	if !ok {
		return false, errBreakerOpen
	}
	done, err := g.Primary.Settle(ctx, id, cs, actual)
	err = g.again(ctx, c, err, func(st Store) (err error) {
		done, err = st.Settle(ctx, id, cs, actual)
		return err
	})
	g.record(ctx, c, err)
	return done, err
}

func (g *Guard) primaryReserve(ctx context.Context, id string, cs []Counter, ttl time.Duration) (Result, error) {
	c, ok := g.Breaker.allow()
	if !ok {
		return Result{}, errBreakerOpen
	}
	res, err := g.Primary.Reserve(ctx, id, cs, ttl)
	err = g.again(ctx, c, err, func(st Store) (err error) {
		res, err = st.Reserve(ctx, id, cs, ttl)
		return err
	})
	g.record(ctx, c, err)
	return res, err
}

// again gives a probe that failed one more try, f on a [Guard.Fresh]
// primary, and returns that try's error: the probe's verdict is the
// store's, not the outage-worn client's. Other calls, and a probe whose
// own context ended, keep their error.
func (g *Guard) again(ctx context.Context, c call, err error, f func(Store) error) error {
	if err == nil || !c.probe || g.Fresh == nil || ctx.Err() != nil {
		return err
	}
	st, closeFresh := g.Fresh()
	defer closeFresh()
	return f(st)
}

// record tells the breaker how an admitted call went. A call whose own
// context ended says nothing about the store.
func (g *Guard) record(ctx context.Context, c call, err error) {
	if err != nil && ctx.Err() != nil {
		g.Breaker.abandon(c)
		return
	}
	g.Breaker.done(c, err)
}

func (g *Guard) push(p pending) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.backlog) >= MaxBacklog {
		g.backlog = g.backlog[1:]
		g.dropped++
	}
	g.backlog = append(g.backlog, p)
}

// Backlog returns how many entries wait for reconciliation and how many
// were dropped.
func (g *Guard) Backlog() (waiting, dropped int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.backlog), g.dropped
}

// Reconcile replays the backlog into the primary, in order, and stops at
// the first error (the store is still down). It is idempotent: replays are
// reserved under "reconcile:<id>", which the store remembers for
// [ReplayTTL].
//
// Only fixed windows (budgets) are replayed: a sliding RPM/TPM window that
// the outage outlasted no longer counts the usage, and parallel slots are
// long free.
func (g *Guard) Reconcile(ctx context.Context) (int, error) {
	done := 0
	for {
		g.mu.Lock()
		if len(g.backlog) == 0 {
			g.mu.Unlock()
			return done, nil
		}
		p := g.backlog[0]
		g.mu.Unlock()
		if err := g.replay(ctx, p); err != nil {
			return done, err
		}
		g.mu.Lock()
		// Only this goroutine pops; push appends, so index 0 is still p
		// unless the backlog overflowed meanwhile.
		if len(g.backlog) > 0 && g.backlog[0].id == p.id {
			g.backlog = g.backlog[1:]
		}
		g.mu.Unlock()
		done++
	}
}

func (g *Guard) replay(ctx context.Context, p pending) error {
	if !p.replay {
		_, err := g.primarySettle(ctx, p.id, p.cs, p.actual)
		return err
	}
	now := g.Clock.Now()
	cs := make([]Counter, 0, len(p.cs))
	for _, c := range p.cs {
		if c.Window != Fixed || (!c.End.IsZero() && !c.End.After(now)) {
			continue
		}
		c.Limit, c.Amount = Unlimited, p.actual.Of(c.Dim)
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return nil
	}
	id := "reconcile:" + p.id
	res, err := g.primaryReserve(ctx, id, cs, ReplayTTL)
	if err != nil {
		return err
	}
	if !res.OK && !res.Duplicate {
		return errors.New("limits: replay refused") // cannot happen with Unlimited
	}
	// No settle: the reservation is already the actual usage, and a store
	// forgets a reservation at its settle. Left unsettled, its record
	// stays until ReplayTTL, so a retry after a lost reply is a Duplicate
	// and charges nothing; at expiry the fixed windows keep the amount.
	return nil
}

// ReplayTTL is how long the store remembers a replayed reservation, so
// that a retried replay (its reply lost) is not charged twice. It bounds
// how long a reconcile may keep retrying one replay; the backlog behind
// it is bounded too, so the records it costs are few.
const ReplayTTL = time.Hour

// Probe pings the store if the breaker is open and a probe is due, so
// that the breaker closes when the store is back even without requests:
// a fail_closed replica reports itself not ready while open, and gets no
// traffic to probe with.
func (g *Guard) Probe(ctx context.Context) {
	if g.Ping == nil || g.Breaker.State() != BreakerOpen {
		return
	}
	c, ok := g.Breaker.allow()
	if !ok {
		return
	}
	g.record(ctx, c, g.Ping(ctx))
}

// Run probes and reconciles every interval until ctx ends.
func (g *Guard) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Probe(ctx)
			if n, err := g.Reconcile(ctx); err != nil {
				g.log().Debug("limits: reconcile waits for the store", "replayed", n, "err", err)
			} else if n > 0 {
				g.log().Info("limits: reconciled", "replayed", n)
			}
		}
	}
}

func (g *Guard) log() *slog.Logger {
	if g.Log == nil {
		return slog.Default()
	}
	return g.Log
}
