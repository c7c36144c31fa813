// Package spendstatus reads the spend of the current budget period of
// VirtualKeys and Budgets from the limits store, for their status. It
// reads the very counters the extproc reserves against, so status shows
// the spend the gateway enforces, not an estimate beside it.
//
// It uses extproc/limits for the counters' names (the planner): the one
// place the layout is defined. Reads are batched into one pipeline per
// pass and run on the status writer's interval, never per request.
package spendstatus

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/limits"
)

// Query is one subject whose budget counter to read: a key (Scope "key",
// ID its limits_id), a user, team or org (their id), or the gateway
// (Scope "global", no ID).
type Query struct {
	Scope, ID  string
	MaxBudget  float64
	SoftBudget float64
	// Period is 1h, 1d, 7d, 30d or 1mo; empty never resets.
	Period string
}

// Result is a subject's spend in its current period.
type Result struct {
	// USD is the spend, in micro-dollars.
	Spend budget.MicroUSD
	// ResetsAt is when the period ends; zero when it never does.
	ResetsAt time.Time
	// Tracked is false for a subject with no budget: there is no counter.
	Tracked bool
}

// Reader reads budget counters from Redis.
type Reader struct {
	Client  redis.Cmdable
	planner limits.Planner
}

// New returns a reader for the store limits describes. The planner must
// match the extproc's (its time zone aligns the periods), so it is built
// from the same config section.
func New(c redis.Cmdable, l *config.Limits, clock func() time.Time) (*Reader, error) {
	r := &Reader{Client: c, planner: limits.Planner{Clock: budget.Clock(clock)}}
	if l.TimeZone != "" {
		loc, err := time.LoadLocation(l.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("limits.time_zone: %w", err)
		}
		r.planner.Location = loc
	}
	return r, nil
}

// Read returns each query's spend, in order, with one round trip.
func (r *Reader) Read(ctx context.Context, qs []Query) ([]Result, error) {
	out := make([]Result, len(qs))
	keys := make([]string, len(qs))
	var cs []limits.Counter
	for i, q := range qs {
		if q.MaxBudget <= 0 && q.SoftBudget <= 0 {
			continue
		}
		p, err := budget.ParsePeriod(q.Period)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", q.Scope, q.ID, err)
		}
		cs = r.planner.Plan(cs[:0], []limits.Subject{{Scope: q.Scope, ID: q.ID, Limits: limits.Limits{MaxBudget: q.MaxBudget, SoftBudget: q.SoftBudget, BudgetDuration: p}}}, "", limits.Estimate{})
		for _, c := range cs {
			if c.Dim == limits.Cost {
				keys[i] = c.Key
				out[i].ResetsAt = c.End
				out[i].Tracked = true
			}
		}
	}
	pipe := r.Client.Pipeline()
	cmds := make([]*redis.StringCmd, len(qs))
	for i, k := range keys {
		if k != "" {
			cmds[i] = pipe.Get(ctx, k)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read budget counters: %w", err)
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		n, err := c.Int64()
		switch {
		case err == redis.Nil:
			// Nothing spent this period yet.
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", keys[i], err)
		default:
			out[i].Spend = budget.MicroUSD(n)
		}
	}
	return out, nil
}
