package errs

import (
	"errors"
	"slices"
	"sort"
)

// A Rule names, in a stable and low-cardinality way, the rule that refused
// a request. It reaches the client in the x-weir-refusal-rule header
// ([HeaderRefusalRule]) and at the end of the error message, the log in the
// "refused" line, and the metric weir_admission_refusals_total as its rule
// label. The set is closed: [Rules] lists every value, and anything else is
// reported as [RuleOther]. Renaming a rule breaks dashboards and alerts;
// add new ones instead.
//
// Rules are "<subject>.<what>". Access rules:
type Rule string

const (
	// RuleKeyMissing: no key was sent and the path requires one (401).
	RuleKeyMissing Rule = "key.missing"
	// RuleKeyUnknown: the key sent is malformed or not a key Weir knows (401).
	RuleKeyUnknown Rule = "key.unknown"
	// RuleKeysLoading: a well-formed key the gateway does not know, sent
	// before the admin API's keys have loaded from their store (Redis down
	// at start-up): it may be one of them, so the client is told to retry
	// (503 with Retry-After) rather than that its key is wrong (401).
	RuleKeysLoading Rule = "keys.loading"
	// RuleKeyBlocked: the key is blocked (403).
	RuleKeyBlocked Rule = "key.blocked"
	// RuleKeyExpired: the key's expiry has passed (403).
	RuleKeyExpired Rule = "key.expired"
	// RuleKeyModelNotAllowed: the key's models list excludes the model (403).
	RuleKeyModelNotAllowed Rule = "key.model_not_allowed"
	// RuleTeamBlocked: the key's team is blocked (403).
	RuleTeamBlocked Rule = "team.blocked"
	// RuleTeamModelNotAllowed: the key's team's models list excludes the model (403).
	RuleTeamModelNotAllowed Rule = "team.model_not_allowed"
	// RuleUserModelNotAllowed: the key's user's models list excludes the model (403).
	RuleUserModelNotAllowed Rule = "user.model_not_allowed"
	// RuleModelUnpriced: a budget applies but the model has no price (403).
	RuleModelUnpriced Rule = "model.unpriced"
	// RuleModelContextLength: prompt plus reply limit exceed the model's
	// configured context window (400).
	RuleModelContextLength Rule = "model.context_length"
	// RuleRequestDuplicateKey: the body repeats a top-level key, or one in
	// stream_options (400).
	RuleRequestDuplicateKey Rule = "request.duplicate_key"
	// RuleRequestReplyLimit: the reply limit (max_tokens and the like) is
	// above the largest reply any model gives (400).
	RuleRequestReplyLimit Rule = "request.reply_limit"
	// RuleStoreUnavailable: the limits store is unreachable and the store
	// fails closed (503).
	RuleStoreUnavailable Rule = "store.unavailable"
	// RuleResponsesStoredState: a Responses request names state stored in
	// the provider account that every key shares: a conversation, or a
	// previous response on a model without stored_responses (400).
	RuleResponsesStoredState Rule = "responses.stored_state"
	// RuleResponsesUnknownID: previous_response_id is not an id Weir
	// issued to this key: another key's, forged, or none at all, which
	// are not told apart (404).
	RuleResponsesUnknownID Rule = "responses.unknown_id"
	// RuleMessagesStoredState: a Messages request names state stored in
	// the provider account that every key shares: a code execution
	// "container", or a content block whose source is an uploaded file
	// (file_id) (400).
	RuleMessagesStoredState Rule = "messages.stored_state"
	// RuleOther: a refusal whose error names no rule (a bug to fix: every
	// refusal should name one). Only the metric and the log use it.
	RuleOther Rule = "other"
)

// Budgets and rate limits are "<scope>.<dim>", or "<scope>.model_<dim>"
// for a per-model limit: key.rpm, team.budget, user.model_tpm,
// global.parallel. The same rule names a limit whether the request merely
// found it full (429, or 402 for a budget that never resets) or asked for
// more than it could ever hold (400, code request_exceeds_limit): the code
// tells those apart, the rule tells which limit.
var (
	// LimitScopes are the subjects limits apply to (limits.Subject's
	// Scope; "session" is a client session under a key, limits.session).
	// A scope missing here is reported as "other": add it here when adding
	// it to the planner.
	LimitScopes = []string{"key", "user", "team", "org", "global", "session"}
	// LimitDims are what a limit counts: spend, tokens per minute,
	// requests per minute, requests in flight.
	LimitDims = []string{"budget", "tpm", "rpm", "parallel"}
)

// HeaderRefusalRule is the response header of a refusal that names its
// rule, for clients and proxies to read without parsing the message.
const HeaderRefusalRule = "x-weir-refusal-rule"

// LimitRule is the rule of a limit on scope counting dim, per model or
// overall. A scope or dim outside [LimitScopes] and [LimitDims] is
// [RuleOther].
func LimitRule(scope, dim string, perModel bool) Rule {
	if !slices.Contains(LimitScopes, scope) || !slices.Contains(LimitDims, dim) {
		return RuleOther
	}
	if perModel {
		return Rule(scope + ".model_" + dim)
	}
	return Rule(scope + "." + dim)
}

var accessRules = []Rule{
	RuleKeyMissing, RuleKeyUnknown, RuleKeysLoading, RuleKeyBlocked, RuleKeyExpired, RuleKeyModelNotAllowed,
	RuleTeamBlocked, RuleTeamModelNotAllowed, RuleUserModelNotAllowed,
	RuleModelUnpriced, RuleModelContextLength, RuleRequestDuplicateKey, RuleRequestReplyLimit,
	RuleStoreUnavailable,
	RuleResponsesStoredState, RuleResponsesUnknownID,
	RuleMessagesStoredState,
}

var known = func() map[Rule]bool {
	m := map[Rule]bool{RuleOther: true}
	for _, r := range accessRules {
		m[r] = true
	}
	for _, s := range LimitScopes {
		for _, d := range LimitDims {
			m[LimitRule(s, d, false)] = true
			m[LimitRule(s, d, true)] = true
		}
	}
	return m
}()

// Rules returns every rule, [RuleOther] included, sorted.
func Rules() []Rule {
	out := make([]Rule, 0, len(known))
	for r := range known {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Known reports whether r is one of [Rules].
func (r Rule) Known() bool { return known[r] }

// Label is r if it is known, else [RuleOther]: the metric label, whose
// cardinality stays bounded by [Rules].
func (r Rule) Label() string {
	if known[r] {
		return string(r)
	}
	return string(RuleOther)
}

// RefusalError is a refusal that names its rule. It wraps an error that
// wraps a sentinel, so [KindOf] still maps it to its status in one place,
// and errors.Is on the sentinel still holds.
type RefusalError struct {
	Rule Rule
	Err  error
}

// Refuse attaches rule to err.
func Refuse(rule Rule, err error) error { return &RefusalError{Rule: rule, Err: err} }

func (e *RefusalError) Error() string { return e.Err.Error() }
func (e *RefusalError) Unwrap() error { return e.Err }

// RuleOf returns the rule named by err, or "" if it names none. The
// outermost [RefusalError] wins.
func RuleOf(err error) Rule {
	var re *RefusalError
	if errors.As(err, &re) {
		return re.Rule
	}
	return ""
}
