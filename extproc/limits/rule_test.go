package limits_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
)

// TestEveryCounterHasARule: the rule set is closed over what limits
// counts. Every dimension, for every scope a subject may have, overall
// and per model, maps to a known rule other than "other", and no two
// counters of different meaning share one.
func TestEveryCounterHasARule(t *testing.T) {
	dims := []limits.Dim{limits.Cost, limits.Tokens, limits.Requests, limits.Parallel}
	if len(dims) != len(errs.LimitDims) {
		t.Fatalf("limits has %d dims, errs.LimitDims %d", len(dims), len(errs.LimitDims))
	}
	seen := map[errs.Rule]string{}
	for _, scope := range errs.LimitScopes {
		for _, d := range dims {
			for _, model := range []string{"", "gpt-4o"} {
				c := limits.Counter{Scope: scope, Dim: d, Model: model}
				r := c.RuleID()
				if r == errs.RuleOther || !r.Known() {
					t.Errorf("%s: rule %q", c.Rule(), r)
				}
				if prev, ok := seen[r]; ok {
					t.Errorf("%s and %s share rule %q", prev, c.Rule(), r)
				}
				seen[r] = c.Rule()
				if model != "" && strings.Contains(string(r), model) {
					t.Errorf("rule %q names the model: unbounded", r)
				}
			}
		}
	}
}

// TestPlannedScopesHaveRules plans every limit for every scope and
// checks each counter the planner emits names a known rule.
func TestPlannedScopesHaveRules(t *testing.T) {
	l := limits.Limits{MaxBudget: 1, RPM: 1, TPM: 1, MaxParallel: 1}
	var subjects []limits.Subject
	for _, s := range errs.LimitScopes {
		subjects = append(subjects, limits.Subject{Scope: s, ID: "id", Limits: l, Models: map[string]limits.Limits{"m": l}})
	}
	var p limits.Planner
	cs := p.Plan(nil, subjects, "m", limits.Estimate{Tokens: 1, Cost: 1})
	if want := len(errs.LimitScopes) * 2 * len(errs.LimitDims); len(cs) != want {
		t.Fatalf("%d counters, want %d", len(cs), want)
	}
	for _, c := range cs {
		if r := c.RuleID(); r == errs.RuleOther || !r.Known() {
			t.Errorf("%s: rule %q", c.Rule(), r)
		}
	}
}

// TestErrNamesRule: each kind of limit refusal carries the refusing
// counter's rule, keeps its sentinel, and says the rule in prose.
func TestErrNamesRule(t *testing.T) {
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		c        limits.Counter
		want     errs.Rule
		sentinel error
		status   int
		prose    string
	}{
		{"rate", limits.Counter{Scope: "key", Dim: limits.Requests, Limit: 600, Amount: 1}, "key.rpm", errs.ErrRateLimited, 429, "key rpm of 600 reached"},
		{"tokens per model", limits.Counter{Scope: "user", Model: "gpt-4o", Dim: limits.Tokens, Limit: 100, Amount: 10}, "user.model_tpm", errs.ErrRateLimited, 429, "user tpm for model gpt-4o"},
		{"budget that resets", limits.Counter{Scope: "team", Dim: limits.Cost, Window: limits.Fixed, End: end, Limit: 100, Amount: 1}, "team.budget", errs.ErrBudgetExceeded, 429, "team budget"},
		{"budget that never resets", limits.Counter{Scope: "global", Dim: limits.Cost, Window: limits.Fixed, Limit: 100, Amount: 1}, "global.budget", errs.ErrPaymentRequired, 402, "it does not reset"},
		{"estimate over a budget", limits.Counter{Scope: "org", Dim: limits.Cost, Window: limits.Fixed, Limit: 100, Amount: 200}, "org.budget", errs.ErrExceedsLimit, 400, "exceeds the org budget"},
		{"estimate over a tpm", limits.Counter{Scope: "key", Dim: limits.Tokens, Limit: 100, Amount: 200}, "key.tpm", errs.ErrExceedsLimit, 400, "exceeds the key tpm"},
		{"parallel", limits.Counter{Scope: "key", Dim: limits.Parallel, Limit: 1, Amount: 1}, "key.parallel", errs.ErrRateLimited, 429, "key parallel of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := limits.Result{Refused: 0}.Err([]limits.Counter{tt.c})
			if got := errs.RuleOf(err); got != tt.want {
				t.Errorf("rule %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("%v does not wrap %v", err, tt.sentinel)
			}
			if got := errs.Status(err); got != tt.status {
				t.Errorf("status %d, want %d", got, tt.status)
			}
			if !strings.Contains(err.Error(), tt.prose) {
				t.Errorf("%q lacks %q", err, tt.prose)
			}
		})
	}
}
