package limits

import (
	"strconv"
	"strings"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
)

// Limits are the budget and rate limits of a key, user, team, organization
// or the whole gateway, or of one model within one of them. Zero means no
// limit. Field names follow LiteLLM's.
type Limits struct {
	MaxBudget      float64       `json:"max_budget,omitempty"`  // USD per BudgetDuration
	SoftBudget     float64       `json:"soft_budget,omitempty"` // USD; alert only
	BudgetDuration budget.Period `json:"budget_duration,omitempty"`
	RPM            int64         `json:"rpm_limit,omitempty"`
	TPM            int64         `json:"tpm_limit,omitempty"`
	MaxParallel    int64         `json:"max_parallel_requests,omitempty"`
}

// Subject is one level of the hierarchy a request is checked against.
type Subject struct {
	Scope  string // "key", "user", "team", "org", "global"
	ID     string // key hash prefix, user id, ...; empty for global
	Limits Limits
	Models map[string]Limits // per-model limits, by resolved model name
	// Name, when set, names the subject in refusals instead of Scope
	// ("session abc of key sk-weir-AbCd…").
	Name string
	// Idle, when set, forgets the subject's budgets that long after their
	// last reservation ([Counter.Idle]): sessions.
	Idle time.Duration
}

// Estimate is what a request is expected to use, before it runs.
type Estimate struct {
	Cost   budget.MicroUSD
	Tokens int64
}

// Planner turns subjects into counters. Its zero value plans sliding
// one-minute rate windows and budgets in UTC under the "{weir}" prefix.
type Planner struct {
	// Prefix namespaces the store keys. Its braces are a Redis Cluster hash
	// tag: the reserve script touches many keys at once, which Cluster
	// allows only within one slot.
	Prefix     string
	Location   *time.Location // budget periods; nil is UTC
	Clock      budget.Clock
	RateWindow Window // Sliding (default) or Fixed, for RPM and TPM
}

// Plan appends to dst the counters for a request to model, in order:
// subjects as given (key first), each with its overall then per-model
// limits. An empty model skips per-model limits.
func (p *Planner) Plan(dst []Counter, subjects []Subject, model string, est Estimate) []Counter {
	now := p.Clock.Now()
	for i := range subjects {
		s := &subjects[i]
		dst = p.plan(dst, s, &s.Limits, "", now, est)
		if l, ok := s.Models[model]; ok && model != "" {
			dst = p.plan(dst, s, &l, model, now, est)
		}
	}
	return dst
}

func (p *Planner) plan(dst []Counter, s *Subject, l *Limits, model string, now time.Time, est Estimate) []Counter {
	prefix := p.Prefix
	if prefix == "" {
		prefix = "{weir}"
	}
	base := prefix + ":" + s.Scope + ":" + s.ID + ":"
	if model != "" {
		base += model + ":"
	}
	if l.MaxBudget > 0 || l.SoftBudget > 0 {
		c := Counter{Scope: s.Scope, Name: s.Name, Model: model, Dim: Cost, Window: Fixed, Limit: Unlimited, Amount: est.Cost, Soft: budget.FromUSD(l.SoftBudget), Idle: s.Idle}
		if l.MaxBudget > 0 {
			c.Limit = budget.FromUSD(l.MaxBudget)
		}
		var b strings.Builder
		b.WriteString(base)
		b.WriteString("cost")
		if l.BudgetDuration != budget.None {
			start, end := l.BudgetDuration.Bounds(now, p.Location)
			b.WriteString(":")
			b.WriteString(strconv.FormatInt(start.Unix(), 10))
			c.End = end
		}
		c.Key = b.String()
		dst = append(dst, c)
	}
	rate := func(d Dim, limit, amount int64) {
		if limit <= 0 {
			return
		}
		c := Counter{Scope: s.Scope, Name: s.Name, Model: model, Dim: d, Window: Sliding, Limit: limit, Amount: amount, Span: time.Minute, Key: base + d.String()}
		if p.RateWindow == Fixed {
			start := now.Truncate(time.Minute)
			c.Window, c.Span, c.End = Fixed, 0, start.Add(time.Minute)
			c.Key += ":" + strconv.FormatInt(start.Unix(), 10)
		}
		dst = append(dst, c)
	}
	rate(Requests, l.RPM, 1)
	rate(Tokens, l.TPM, est.Tokens)
	if l.MaxParallel > 0 {
		dst = append(dst, Counter{Scope: s.Scope, Name: s.Name, Model: model, Dim: Parallel, Window: Gauge, Limit: l.MaxParallel, Amount: 1, Key: base + "parallel"})
	}
	return dst
}
