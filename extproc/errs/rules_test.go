package errs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRuleOfAndBody(t *testing.T) {
	rpm := Rule("key.rpm")
	tests := []struct {
		name       string
		err        error
		wantRule   Rule
		wantLabel  string
		wantStatus int
		wantMsg    string
	}{
		{"no rule", fmt.Errorf("%w: nope", ErrForbidden), "", "other", 403, "forbidden: nope"},
		{"rule on the sentinel", Refuse(RuleKeyBlocked, fmt.Errorf("%w: this key is blocked", ErrForbidden)), RuleKeyBlocked, "key.blocked", 403,
			"forbidden: this key is blocked [rule key.blocked]"},
		{"rule under more context", fmt.Errorf("%w: header", Refuse(RuleKeyUnknown, ErrUnauthorized)), RuleKeyUnknown, "key.unknown", 401,
			"unauthorized: header [rule key.unknown]"},
		{"status wrapper outside the rule", fmt.Errorf("%w: %w", ErrPaymentRequired, Refuse(rpm, ErrBudgetExceeded)), rpm, "key.rpm", 402,
			"payment required: budget exceeded [rule key.rpm]"},
		{"retry-after keeps it", &RetryAfterError{Err: Refuse(rpm, ErrRateLimited)}, rpm, "key.rpm", 429,
			"rate limit exceeded [rule key.rpm]"},
		{"unknown rule is other", Refuse("made.up", ErrRateLimited), "made.up", "other", 429,
			"rate limit exceeded [rule other]"},
		{"internal error hides it", Refuse(RuleKeyBlocked, errors.New("boom")), RuleKeyBlocked, "key.blocked", 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleOf(tt.err); got != tt.wantRule {
				t.Errorf("RuleOf = %q, want %q", got, tt.wantRule)
			}
			if got := RuleOf(tt.err).Label(); got != tt.wantLabel {
				t.Errorf("Label = %q, want %q", got, tt.wantLabel)
			}
			if got := Status(tt.err); got != tt.wantStatus {
				t.Errorf("Status = %d, want %d", got, tt.wantStatus)
			}
			var b struct {
				Error struct {
					Message string  `json:"message"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			if err := json.Unmarshal(Body(tt.err), &b); err != nil {
				t.Fatal(err)
			}
			if b.Error.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", b.Error.Message, tt.wantMsg)
			}
			if b.Error.Param != nil {
				t.Errorf("param %q, want null", *b.Error.Param)
			}
		})
	}
}

// TestRulesClosed: the rule set is what the docs say, every rule is
// known, has the "<subject>.<what>" shape, and appears once.
func TestRulesClosed(t *testing.T) {
	rules := Rules()
	if want := len(accessRules) + 1 + 2*len(LimitScopes)*len(LimitDims); len(rules) != want {
		t.Fatalf("%d rules, want %d: %v", len(rules), want, rules)
	}
	seen := map[Rule]bool{}
	for i, r := range rules {
		if seen[r] {
			t.Errorf("%q twice", r)
		}
		seen[r] = true
		if i > 0 && rules[i-1] >= r {
			t.Errorf("not sorted at %q", r)
		}
		if !r.Known() || r.Label() != string(r) {
			t.Errorf("%q not known", r)
		}
		if r != RuleOther && strings.Count(string(r), ".") != 1 {
			t.Errorf("%q is not <subject>.<what>", r)
		}
	}
	for _, bad := range []struct{ scope, dim string }{{"tenant", "rpm"}, {"key", "?"}, {"", "rpm"}} {
		if r := LimitRule(bad.scope, bad.dim, false); r != RuleOther {
			t.Errorf("LimitRule(%q, %q) = %q, want other", bad.scope, bad.dim, r)
		}
	}
	if r := LimitRule("team", "budget", true); r != "team.model_budget" {
		t.Errorf("per-model team budget = %q", r)
	}
}
