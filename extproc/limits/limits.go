// Package limits enforces budgets and rate limits by reserve, then settle.
//
// Before a request goes upstream, [Store.Reserve] adds an estimate to every
// counter that applies (spend, tokens, requests, parallel requests; for the
// key, user, team, organization and global, overall and per model) all or
// nothing, atomically. When the response is done, [Store.Settle] replaces
// the estimate by the actual usage, or releases it when the upstream failed.
// A reservation whose request vanished expires by itself after its TTL.
//
// Windows, per counter:
//   - [Fixed]: budgets, in calendar periods from package budget; the counter
//     key embeds the period start, so a new period is a new, empty counter.
//     RPM/TPM may use fixed minutes too ([Planner.RateWindow]).
//   - [Sliding]: RPM/TPM by default. An exact sliding log: every
//     reservation is an entry with its time and amount, and entries older
//     than the span no longer count. No approximation, so two replicas
//     never admit more than the limit within any span.
//   - [Gauge]: max parallel requests. An entry per request in flight,
//     removed at settle, or at its deadline if the request vanished.
//
// A vanished reservation releases its parallel slot at the deadline but
// keeps its estimate charged to spend and tokens: the upstream may have
// served it, and the estimate is an upper bound, so a budget is never
// overshot by a replica that crashed mid-stream.
//
// Idempotency: a reservation is recorded by its id, which the caller must
// make unique per request (the router draws a random one; a client's
// x-request-id is never used: clients can repeat or omit it). Reserving an
// id that is in flight adds nothing and is refused with [Result.Duplicate]
// set: a duplicate never admits, since the request it would admit holds no
// reservation to settle. Settling an id again, or after it expired, is a
// no-op that returns false.
//
// The record lives only while the reservation is in flight: a settle
// deletes it, and it expires at the deadline. Nothing needs it after
// either: a second or late settle finds no record, which is the same
// no-op, and no caller reserves a used id again (an id is 128 random
// bits, drawn per request). So state follows the requests in flight, not
// the requests served.
//
// Lifetime: each reservation has its own ttl, which the caller derives
// from the request's own timeout (the backend's attempt timeout plus a
// grace period), so a long stream keeps its parallel slot and its settle
// is still accepted. A vanished request is freed at its deadline.
package limits

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
)

// Store holds counters. Implementations: [Memory] (one replica) and
// package redisstore (shared by replicas). The interface is the request
// path's only dependency on where counters live.
type Store interface {
	// Reserve adds each counter's Amount if every counter stays within its
	// Limit, and adds nothing otherwise. ttl bounds how long the
	// reservation waits for its settle. An error means the store failed;
	// a refusal is a Result with OK false.
	Reserve(ctx context.Context, id string, cs []Counter, ttl time.Duration) (Result, error)
	// Settle replaces the reservation of id on the same counters by actual
	// usage. Settling with zero [Usage] releases it. It returns false when
	// the reservation is unknown, already settled, or expired.
	Settle(ctx context.Context, id string, cs []Counter, actual Usage) (bool, error)
}

// Dim is what a counter counts.
type Dim uint8

const (
	Cost     Dim = iota // micro-dollars ([budget.MicroUSD])
	Tokens              // prompt + completion tokens
	Requests            // requests
	Parallel            // requests in flight
)

func (d Dim) String() string {
	switch d {
	case Cost:
		return "budget"
	case Tokens:
		return "tpm"
	case Requests:
		return "rpm"
	case Parallel:
		return "parallel"
	}
	return "?"
}

// Window is how a counter forgets.
type Window uint8

const (
	Fixed   Window = iota + 1 // until End; the key names the window
	Sliding                   // entries count for Span after their reservation
	Gauge                     // entries count until settled or their deadline
)

// Unlimited as a Limit counts without refusing (spend tracking, soft
// budgets, reconciliation).
const Unlimited = -1

// Counter is one limit applied to one request.
type Counter struct {
	Key    string // store key; unique per subject, model, dim and fixed window
	Scope  string // "key", "team", ...: with Dim and Model, names the rule
	Model  string // set for a per-model limit
	Dim    Dim
	Window Window
	Limit  int64         // Unlimited, or the most the counter may hold
	Soft   int64         // budgets: alert when Used reaches it; 0 for none
	Amount int64         // the estimate to reserve
	Span   time.Duration // Sliding: the window length
	End    time.Time     // Fixed: when the window ends; zero for never
	// Idle, for a Fixed counter, forgets it Idle after its last
	// reservation (never before that reservation's own deadline), or at
	// End if that comes first: a session budget lives as long as the
	// session is active. Zero keeps it until End.
	Idle time.Duration
	// Name names the counter's subject for the client when Scope alone
	// does not ("session abc of key sk-weir-AbCd…"); empty for most.
	Name string
}

// Rule names the limit for the client: "key budget", "team tpm for model
// gpt-4o". It is built on demand: only a refusal needs it.
func (c *Counter) Rule() string {
	r := cmp.Or(c.Name, c.Scope) + " " + c.Dim.String()
	if c.Model != "" {
		r += " for model " + c.Model
	}
	return r
}

// RuleID is the counter's stable rule identifier for the refusal header,
// log and metric: "key.budget", "team.model_tpm" ([errs.LimitRule]). The
// model itself is left out, so the set stays closed.
func (c *Counter) RuleID() errs.Rule {
	return errs.LimitRule(c.Scope, c.Dim.String(), c.Model != "")
}

// Usage is what a request actually used.
type Usage struct {
	Cost     budget.MicroUSD
	Tokens   int64
	Requests int64
}

// Of returns the usage in a counter's dimension. Parallel is always 0:
// settling frees the slot.
func (u Usage) Of(d Dim) int64 {
	switch d {
	case Cost:
		return u.Cost
	case Tokens:
		return u.Tokens
	case Requests:
		return u.Requests
	}
	return 0
}

// State is a counter as the store saw it.
type State struct {
	Used  int64         // after the reservation if admitted; before it if refused
	Reset time.Duration // until the window frees (Fixed: its end; Sliding: the oldest entry leaves)
}

// Result is the outcome of a reservation.
type Result struct {
	OK bool
	// Duplicate: the id is already reserved and in flight; nothing was
	// added, OK is false and States is empty. Ids are unique per request,
	// so this is a caller's bug or a collision, never a client's retry:
	// the caller must refuse the request, never serve it unreserved.
	Duplicate bool
	// Refused is the index of the first counter that refused, or -1.
	// Counters are checked in order, so planning them from the key
	// outwards names the most specific rule.
	Refused    int
	RetryAfter time.Duration
	States     []State // one per counter, when not Duplicate
	// Degraded: served by the local fallback during a store outage.
	Degraded bool
}

// Err turns a refusal into the client's error, naming the rule in prose
// and as an [errs.RefusalError] ([Counter.RuleID]):
//
//   - a request whose estimate alone exceeds the limit can never pass
//     (retrying cannot help; a smaller max_tokens may): [errs.ErrExceedsLimit],
//     a 400 with no Retry-After;
//   - a budget that never resets (no budget_duration) and is reached:
//     [errs.ErrPaymentRequired] wrapping [errs.ErrBudgetExceeded], a 402
//     with no Retry-After, which SDKs do not retry;
//   - any other budget: [errs.ErrBudgetExceeded], and any other limit
//     [errs.ErrRateLimited], each with Retry-After.
//
// It returns nil when r is OK.
func (r Result) Err(cs []Counter) error {
	if r.OK || r.Refused < 0 || r.Refused >= len(cs) {
		return nil
	}
	c := cs[r.Refused]
	return errs.Refuse(c.RuleID(), r.err(&c))
}

func (r Result) err(c *Counter) error {
	if c.Name != "" && c.Amount <= c.Limit {
		// "session abc of key sk-weir-AbCd… reached its budget of $1.00"
		if c.Dim == Cost {
			return &errs.RetryAfterError{Err: fmt.Errorf("%w: %s reached its %s of %s", errs.ErrBudgetExceeded, c.Name, c.Dim, budget.FormatUSD(c.Limit)), After: r.RetryAfter}
		}
		return &errs.RetryAfterError{Err: fmt.Errorf("%w: %s reached its %s of %d", errs.ErrRateLimited, c.Name, c.Dim, c.Limit), After: r.RetryAfter}
	}
	switch {
	case c.Amount > c.Limit && c.Dim == Cost:
		return fmt.Errorf("%w: %w: this request's estimate of %s exceeds the %s of %s", errs.ErrExceedsLimit, errs.ErrBudgetExceeded, budget.FormatUSD(c.Amount), c.Rule(), budget.FormatUSD(c.Limit))
	case c.Amount > c.Limit:
		return fmt.Errorf("%w: this request's estimate of %d exceeds the %s of %d", errs.ErrExceedsLimit, c.Amount, c.Rule(), c.Limit)
	case c.Dim == Cost && c.Window == Fixed && c.End.IsZero() && c.Idle == 0:
		return fmt.Errorf("%w: %w: %s of %s reached; it does not reset", errs.ErrPaymentRequired, errs.ErrBudgetExceeded, c.Rule(), budget.FormatUSD(c.Limit))
	case c.Dim == Cost:
		return &errs.RetryAfterError{Err: fmt.Errorf("%w: %s of %s reached", errs.ErrBudgetExceeded, c.Rule(), budget.FormatUSD(c.Limit)), After: r.RetryAfter}
	}
	return &errs.RetryAfterError{Err: fmt.Errorf("%w: %s of %d reached", errs.ErrRateLimited, c.Rule(), c.Limit), After: r.RetryAfter}
}

// SoftCrossed reports whether a reservation took a budget with a soft
// limit to or past it, for the alert header and event.
func (r Result) SoftCrossed(cs []Counter) bool {
	if !r.OK || len(r.States) != len(cs) {
		return false
	}
	for i, c := range cs {
		if c.Soft > 0 && r.States[i].Used >= c.Soft {
			return true
		}
	}
	return false
}

// Headers are the x-ratelimit-* values of the tightest request and token
// limits.
type Headers struct {
	Requests, Tokens Limit
}

// Limit is one x-ratelimit trio. Set is false when no limit applied.
type Limit struct {
	Set       bool
	Limit     int64
	Remaining int64
	Reset     time.Duration
}

// RateHeaders picks, among the RPM and TPM counters, the one with the least
// remaining: the tightest rule is the one a client must respect.
func (r Result) RateHeaders(cs []Counter) Headers {
	var h Headers
	if len(r.States) != len(cs) {
		return h
	}
	for i, c := range cs {
		var dst *Limit
		switch c.Dim {
		case Requests:
			dst = &h.Requests
		case Tokens:
			dst = &h.Tokens
		default:
			continue
		}
		if c.Limit < 0 {
			continue
		}
		rem := max(c.Limit-r.States[i].Used, 0)
		if !dst.Set || rem < dst.Remaining {
			*dst = Limit{Set: true, Limit: c.Limit, Remaining: rem, Reset: r.States[i].Reset}
		}
	}
	return h
}
