// Package admission decides whether a request may go upstream: it
// authenticates the virtual key, applies the key's own rules (blocked,
// expiry, allowed models, aliases) and its team's and user's (a blocked
// team, allowed models), and reserves the request's estimated
// cost, tokens and request slots on every applicable counter (key, user,
// team, organization, global) in one all-or-nothing store call. When the
// response is complete it settles the reservation to the actual usage and
// writes one spend record.
//
// The router-level filter owns a request from its body to the end of its
// response on one gRPC stream, so the reservation and its settle always
// happen in the same process; nothing is shared with the upstream filter.
package admission

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/internal/sat"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/pricing"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/tokens"
	"github.com/weir-ai/weir/extproc/vkey"
)

// Policy is the compiled auth and limits config. It is immutable and
// belongs to one runtime; a reload compiles a new one.
type Policy struct {
	Required      bool
	OptionalPaths []string
	ConfigKeys    []*vkey.Key
	Users         map[string]limits.Subject
	Teams         map[string]limits.Subject
	Orgs          map[string]limits.Subject
	TeamOrg       map[string]string
	// TeamRules and UserRules are the config's teams' and users' access
	// rules (blocked, models), by id.
	TeamRules  map[string]Rules
	UserRules  map[string]Rules
	Global     *limits.Subject
	Planner    limits.Planner
	Completion int64
	// MaxReserve caps the completion tokens one request reserves (0: no
	// cap; limits.max_reserve_tokens).
	MaxReserve   int64
	BudgetStatus int
	CostHeader   bool
	// Prices is the embedded pricing table with the config's overrides.
	Prices *pricing.Table
	// Session is the per-session limits; nil without limits.session.
	Session *Session
}

// Session is the compiled limits.session.
type Session struct {
	Header string // lower case, as Envoy passes header names
	Limits limits.Limits
	Idle   time.Duration
}

// Compile turns the config sections into a Policy. The config is already
// validated; Compile re-checks only what it parses.
func Compile(a *config.Auth, l *config.Limits, prices []config.PriceOverride) (*Policy, error) {
	p := &Policy{
		Required:      a.KeysRequired(),
		OptionalPaths: a.OptionalPaths,
		Users:         map[string]limits.Subject{},
		Teams:         map[string]limits.Subject{},
		Orgs:          map[string]limits.Subject{},
		TeamOrg:       map[string]string{},
		TeamRules:     map[string]Rules{},
		UserRules:     map[string]Rules{},
		Completion:    l.CompletionEstimate,
		MaxReserve:    l.MaxReserveTokens,
		BudgetStatus:  l.BudgetStatus,
		CostHeader:    l.CostHeader,
	}
	if p.Completion == 0 {
		p.Completion = config.DefaultCompletionEstimate
	}
	overrides := make([]pricing.Override, 0, len(prices))
	for _, o := range prices {
		overrides = append(overrides, pricing.Override{Backend: o.Backend, Provider: o.Provider, Model: o.Model,
			USD: pricing.USD{Input: o.Input, Output: o.Output, CachedInput: o.CachedInput, CacheWrite: o.CacheWrite}})
	}
	tbl, err := pricing.Default().With(overrides...)
	if err != nil {
		return nil, fmt.Errorf("%w: pricing: %w", config.ErrInvalid, err)
	}
	p.Prices = tbl
	if l.TimeZone != "" {
		loc, err := time.LoadLocation(l.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("%w: limits.time_zone: %w", config.ErrInvalid, err)
		}
		p.Planner.Location = loc
	}
	if l.RateWindow == "fixed" {
		p.Planner.RateWindow = limits.Fixed
	}
	if sc := l.Session; sc != nil {
		lim, _, err := limitsOf(&sc.LimitsConfig, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: limits.session: %w", config.ErrInvalid, err)
		}
		idle, err := sc.IdleTTL()
		if err != nil {
			return nil, fmt.Errorf("%w: limits.session.ttl: %w", config.ErrInvalid, err)
		}
		p.Session = &Session{Header: strings.ToLower(sc.Header), Limits: lim, Idle: idle}
	}
	for i := range a.Keys {
		kc := &a.Keys[i]
		h, err := vkey.ParseHash(kc.Hash)
		if err != nil {
			return nil, fmt.Errorf("%w: auth.keys[%d].hash: %w", config.ErrInvalid, i, err)
		}
		lim, models, err := limitsOf(&kc.LimitsConfig, kc.ModelLimits)
		if err != nil {
			return nil, fmt.Errorf("%w: auth.keys[%d]: %w", config.ErrInvalid, i, err)
		}
		p.ConfigKeys = append(p.ConfigKeys, &vkey.Key{
			Hash: h, Prefix: "hash:" + h.Short(), Alias: kc.Alias, LimitsID: kc.LimitsID, Models: kc.Models, Aliases: kc.Aliases,
			ExpiresAt: kc.ExpiresAt, Blocked: kc.Blocked, UserID: kc.UserID, TeamID: kc.TeamID, OrgID: kc.OrgID,
			Metadata: kc.Metadata, Tags: kc.Tags, Limits: lim, ModelLimits: models,
		})
	}
	for _, g := range []struct {
		scope string
		in    []config.SubjectConfig
		out   map[string]limits.Subject
		rules map[string]Rules
	}{{"user", a.Users, p.Users, p.UserRules}, {"team", a.Teams, p.Teams, p.TeamRules}, {"org", a.Orgs, p.Orgs, nil}} {
		for i := range g.in {
			s := &g.in[i]
			lim, models, err := limitsOf(&s.LimitsConfig, s.ModelLimits)
			if err != nil {
				return nil, fmt.Errorf("%w: auth.%s %q: %w", config.ErrInvalid, g.scope, s.ID, err)
			}
			g.out[s.ID] = limits.Subject{Scope: g.scope, ID: s.ID, Limits: lim, Models: models}
			if g.rules != nil {
				g.rules[s.ID] = Rules{Blocked: s.Blocked, Models: s.Models}
			}
			if g.scope == "team" && s.OrgID != "" {
				p.TeamOrg[s.ID] = s.OrgID
			}
		}
	}
	if a.Global != nil {
		lim, _, err := limitsOf(a.Global, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: auth.global: %w", config.ErrInvalid, err)
		}
		p.Global = &limits.Subject{Scope: "global", Limits: lim}
	}
	return p, nil
}

func limitsOf(c *config.LimitsConfig, per map[string]config.LimitsConfig) (limits.Limits, map[string]limits.Limits, error) {
	conv := func(c *config.LimitsConfig) (limits.Limits, error) {
		d, err := budget.ParsePeriod(c.BudgetDuration)
		if err != nil {
			return limits.Limits{}, err
		}
		return limits.Limits{MaxBudget: c.MaxBudget, SoftBudget: c.SoftBudget, BudgetDuration: d, RPM: c.RPM, TPM: c.TPM, MaxParallel: c.MaxParallel}, nil
	}
	l, err := conv(c)
	if err != nil {
		return l, nil, err
	}
	var models map[string]limits.Limits
	for m, mc := range per {
		ml, err := conv(&mc)
		if err != nil {
			return l, nil, fmt.Errorf("model_limits[%s]: %w", m, err)
		}
		if models == nil {
			models = map[string]limits.Limits{}
		}
		models[m] = ml
	}
	return l, models, nil
}

// Active reports whether admission has anything to do: a key to check or
// a limit to count.
func (p *Policy) Active(g *Gate) bool {
	return p.Required || len(p.ConfigKeys) > 0 || p.Global != nil || p.Session != nil || (g != nil && g.Extra != nil && g.Extra.Len() > 0)
}

func (p *Policy) optional(path string) bool {
	for _, o := range p.OptionalPaths {
		if strings.HasPrefix(path, o) {
			return true
		}
	}
	return false
}

// SpendSink receives one record per settled request.
type SpendSink interface {
	Append(ctx context.Context, r spend.Record) error
}

// Gate holds what admission needs beyond the Policy: the keyring (config
// keys and keys from the admin API), the counter store and the pricing.
// One Gate lives as long as the process; it survives config reloads so
// counters are never reset by a reload.
type Gate struct {
	Keys *vkey.Keyring
	// Extra holds keys created through the admin API; nil without one.
	Extra *vkey.Keyring
	Store limits.Store
	// Tokens bounds a request's prompt tokens for the reservation;
	// settling corrects it to the provider's count.
	Tokens tokens.Estimator
	Spend  SpendSink
	Clock  budget.Clock
	Log    *slog.Logger
	// TTL bounds how long a reservation waits for its settle when the
	// request names no timeout ([Request.Timeout] zero): past it the
	// request is presumed vanished and its parallel slot frees itself.
	TTL time.Duration

	extra atomic.Pointer[Subjects]
	// extraLoaded: Extra holds the store's keys (the syncer's first load
	// is done). Until then a well-formed key found nowhere may be one of
	// them, and is answered [ErrKeysLoading], not [vkey.ErrUnknown].
	extraLoaded atomic.Bool
}

// KeysLoadingRetry is the Retry-After of [ErrKeysLoading]: the key
// syncer's longest wait between two tries (keystore.Syncer's default
// MaxBackoff). A client that waits that long finds the keys loaded if the
// store was back when it was refused, and an SDK's default two retries
// span two of the syncer's tries; a shorter delay would spend them while
// the syncer still waits.
const KeysLoadingRetry = 5 * time.Second

// ErrKeysLoading refuses a well-formed key the gateway does not know while
// the admin API's keys have not loaded from their store (Redis down at
// start-up). A 401 would tell the client its key is wrong, and SDKs do not
// retry a 401; a 503 with Retry-After is retried. Its message does not say
// whether the key exists: the gateway cannot know yet.
var ErrKeysLoading error = &errs.RetryAfterError{
	Err: errs.Refuse(errs.RuleKeysLoading, fmt.Errorf("%w: the gateway's keys are still loading from its key store, so this key cannot be checked yet; retry shortly",
		errs.ErrUnavailable)),
	After: KeysLoadingRetry,
}

// MarkExtraLoaded records that Extra holds the store's keys. Call it
// after the first load into Extra; it cannot be undone (a later store
// failure keeps the keys last loaded, and an unknown key is then unknown).
func (g *Gate) MarkExtraLoaded() { g.extraLoaded.Store(true) }

// ExtraLoaded reports whether Extra holds the store's keys ([Gate.MarkExtraLoaded]).
func (g *Gate) ExtraLoaded() bool { return g.extraLoaded.Load() }

// Subjects are users and teams created at run time through the admin API.
// The config's own users and teams take precedence.
type Subjects struct {
	Users     map[string]limits.Subject
	Teams     map[string]limits.Subject
	TeamOrg   map[string]string
	TeamRules map[string]Rules
	UserRules map[string]Rules
}

// Rules are a team's or a user's access rules, with LiteLLM's semantics:
// a blocked team refuses every key of the team, and a key may use only
// the models its team and its user allow (as well as its own). An empty
// Models admits every model; entries are exact names, "provider/*"
// prefixes or "*", as for keys. (Users cannot be blocked: block their
// keys.)
type Rules struct {
	Blocked bool
	Models  []string
}

// SetSubjects swaps in the run-time users and teams.
func (g *Gate) SetSubjects(s *Subjects) { g.extra.Store(s) }

func (g *Gate) user(p *Policy, id string) (limits.Subject, bool) {
	if s, ok := p.Users[id]; ok {
		return s, true
	}
	if ex := g.extra.Load(); ex != nil {
		s, ok := ex.Users[id]
		return s, ok
	}
	return limits.Subject{}, false
}

func (g *Gate) team(p *Policy, id string) (limits.Subject, string, bool) {
	if s, ok := p.Teams[id]; ok {
		return s, p.TeamOrg[id], true
	}
	if ex := g.extra.Load(); ex != nil {
		s, ok := ex.Teams[id]
		return s, ex.TeamOrg[id], ok
	}
	return limits.Subject{}, "", false
}

// rules returns the access rules of a team or user, from the same place
// its limits come from: the config if it declares the id, else the admin
// API's.
func (g *Gate) rules(p *Policy, scope, id string) Rules {
	cfg, cfgRules, pick := p.Users, p.UserRules, func(s *Subjects) map[string]Rules { return s.UserRules }
	if scope == "team" {
		cfg, cfgRules, pick = p.Teams, p.TeamRules, func(s *Subjects) map[string]Rules { return s.TeamRules }
	}
	if _, ok := cfg[id]; ok {
		return cfgRules[id]
	}
	if ex := g.extra.Load(); ex != nil {
		return pick(ex)[id]
	}
	return Rules{}
}

// checkMembers applies the key's team and user rules to model (already
// resolved by the key's aliases): a blocked team first, then the key's
// own model rule (modelErr), then the team's models, then the user's. A
// team or user that does not exist restricts nothing, as in LiteLLM.
func (g *Gate) checkMembers(p *Policy, k *vkey.Key, model string, modelErr error) error {
	var team Rules
	if k.TeamID != "" {
		team = g.rules(p, "team", k.TeamID)
		if team.Blocked {
			return errs.Refuse(errs.RuleTeamBlocked, fmt.Errorf("%w: team %s is blocked", errs.ErrForbidden, k.TeamID))
		}
	}
	if modelErr != nil {
		return modelErr
	}
	if !vkey.ModelAllowed(team.Models, model) {
		return errs.Refuse(errs.RuleTeamModelNotAllowed, fmt.Errorf("%w: model %s is not allowed for team %s", errs.ErrForbidden, model, k.TeamID))
	}
	if k.UserID != "" {
		if u := g.rules(p, "user", k.UserID); !vkey.ModelAllowed(u.Models, model) {
			return errs.Refuse(errs.RuleUserModelNotAllowed, fmt.Errorf("%w: model %s is not allowed for user %s", errs.ErrForbidden, model, k.UserID))
		}
	}
	return nil
}

// Ticket is one request's admission: the key, and the reservation to
// settle.
type Ticket struct {
	Key       *vkey.Key
	Counters  []limits.Counter
	Result    limits.Result
	Reserved  bool
	SoftAlert bool
	Estimate  limits.Estimate
	// Prompt is the reservation's prompt estimate, an upper bound of the
	// prompt tokens (0 when nothing was reserved).
	Prompt int64
	// Price is the backend model's price, looked up once at admission.
	Price  pricing.Price
	Priced bool
}

// Authenticate checks the presented key. It returns the key (nil for an
// anonymous request the policy allows) and the model after the key's
// aliases. A key that was found but refused by its own, its team's or its
// user's rules is returned with the error, for the refusal's log line.
func (g *Gate) Authenticate(p *Policy, authorization, apiKey, path, model string) (*vkey.Key, string, error) {
	k, err := g.lookup(p, authorization, apiKey, path)
	if err != nil {
		return nil, "", err
	}
	if k == nil {
		return nil, model, nil
	}
	// The key's own state (blocked, expired) is checked first, then its
	// team's block, then the models allowed by the key, its team and its
	// user: the error names the first rule that refuses.
	m, err := k.Check(model, g.Clock.Now())
	if err != nil && !errors.Is(err, vkey.ErrModelNotAllowed) {
		return k, "", err
	}
	if err := g.checkMembers(p, k, k.ResolveModel(model), err); err != nil {
		return k, "", err
	}
	return k, m, nil
}

// lookup finds the presented key: nil without an error for an anonymous
// request the policy allows (open mode, whatever the client sends, or no
// key on an optional path).
func (g *Gate) lookup(p *Policy, authorization, apiKey, path string) (*vkey.Key, error) {
	sec, err := vkey.FromHeaders(authorization, apiKey)
	switch {
	case err == nil:
	case !p.Required:
		// Open mode ignores whatever the client sends as a key: SDKs
		// insist on sending one.
		return nil, nil
	case errors.Is(err, vkey.ErrMissing) && p.optional(path):
		return nil, nil
	default:
		return nil, err
	}
	k, err := g.Keys.Authenticate(sec)
	if err != nil && g.Extra != nil {
		k, err = g.Extra.Authenticate(sec)
		// Only a key that passed FromHeaders's shape check gets here, and
		// only when no keyring knows it: the one atomic load is off the
		// path of every key that authenticates.
		if err != nil && !g.extraLoaded.Load() {
			err = ErrKeysLoading
		}
	}
	if err != nil {
		if !p.Required {
			return nil, nil
		}
		return nil, err
	}
	return k, nil
}

// Identify checks the presented key as [Gate.Authenticate] does, for a
// request that names no model (GET /v1/models): the key's own state
// (blocked, expired) and its team's block apply, no model rule. A key that
// was found but refused is returned with the error, for the log line.
func (g *Gate) Identify(p *Policy, authorization, apiKey, path string) (*vkey.Key, error) {
	k, err := g.lookup(p, authorization, apiKey, path)
	if err != nil || k == nil {
		return nil, err
	}
	if err := k.CheckState(g.Clock.Now()); err != nil {
		return k, err
	}
	if k.TeamID != "" && g.rules(p, "team", k.TeamID).Blocked {
		return k, errs.Refuse(errs.RuleTeamBlocked, fmt.Errorf("%w: team %s is blocked", errs.ErrForbidden, k.TeamID))
	}
	return k, nil
}

// Permits reports whether k may send model, by the rules Authenticate
// applies: the key's aliases resolved, then the key's, its team's and its
// user's model rules. Its state is [Gate.Identify]'s to check.
func (g *Gate) Permits(p *Policy, k *vkey.Key, model string) bool {
	m := k.ResolveModel(model)
	return k.Allows(m) && g.checkMembers(p, k, m, nil) == nil
}

// ReservationGrace is added to a request's timeout to make its
// reservation's lifetime: it covers the work before the upstream attempt
// starts and after it ends (reading the body, settling), so the settle of
// a request that ran to its full timeout still arrives before the
// deadline.
const ReservationGrace = time.Minute

// Request is what Reserve reads about a request.
type Request struct {
	// ID is the reservation's id: Weir's own random id for this request
	// (pipeline.NewID), unique, never the client's x-request-id, which a
	// client can repeat, forge or omit.
	ID string
	// Timeout bounds the request's upstream attempt (the chosen backend's
	// timeout, the Envoy route's timeout); the reservation lives
	// Timeout + [ReservationGrace]. Zero uses [Gate.TTL].
	Timeout time.Duration
	Body    []byte
	// Model is the name per-model limits match: the resolved model
	// ([route.Target.LimitName]), not the client's spelling.
	Model    string
	Provider string // backend provider, for pricing
	Upstream string // model name sent upstream, for pricing
	// Completion is the client's reply limit; 0 reserves the configured
	// estimate.
	Completion int64
	// Session is the value of the session header ([Policy.Session]), as
	// the client sent it; empty when absent. It only names counters.
	Session string
}

// checkSessionID refuses a session header value that is empty, longer
// than [config.MaxSessionID] or not visible ASCII: it becomes part of a
// store key and of error messages, so nothing else is allowed.
func checkSessionID(header, id string) error {
	if id == "" || len(id) > config.MaxSessionID {
		return fmt.Errorf("%w: header %s must be 1 to %d characters, got %d", errs.ErrInvalidRequest, header, config.MaxSessionID, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("%w: header %s must be visible ASCII characters (no spaces or control characters)", errs.ErrInvalidRequest, header)
		}
	}
	return nil
}

// session is the request's session subject, placed first: it is the most
// specific, so a runaway session is refused in its own name. The counter
// id is the key's hash prefix and the session id, so two keys never share
// a session's counters; without a key, the session id alone ("-:" marks
// it keyless: hash prefixes are hex, so the two never collide).
func (p *Policy) session(k *vkey.Key, id string) limits.Subject {
	s := limits.Subject{Scope: "session", Limits: p.Session.Limits, Idle: p.Session.Idle}
	if k == nil {
		s.ID, s.Name = "-:"+id, "session "+id
		return s
	}
	s.ID = k.CounterID() + ":" + id
	s.Name = "session " + id + " of key " + cmp.Or(k.Prefix, "hash:"+k.Hash.Short())
	return s
}

// Price looks up the request's price for the cost header and spend.
func (g *Gate) Price(p *Policy, t *Ticket, backend string, r *Request) {
	if p.Prices != nil {
		t.Price, t.Priced = p.Prices.LookupBackend(backend, r.Provider, r.Upstream)
	}
}

// Reserve estimates the request and reserves it on every counter.
func (g *Gate) Reserve(ctx context.Context, p *Policy, t *Ticket, r *Request) error {
	subjects, err := g.subjects(p, t, r)
	if err != nil || len(subjects) == 0 {
		return err
	}
	prompt, err := g.count(r.Body, r.Provider, r.Upstream)
	if err != nil {
		return err
	}
	completion := max(cmp.Or(r.Completion, p.Completion), 0)
	if p.MaxReserve > 0 {
		// The cap trades exactness for throughput: the settle charges the
		// actual usage, which may exceed what was reserved.
		completion = min(completion, p.MaxReserve)
	}
	// Parse bounds the completion; saturating sums keep an estimate that
	// slipped past it huge rather than wrapped negative.
	total := sat.Add(prompt, completion)
	est := limits.Estimate{Tokens: total}
	est.Cost = t.Price.Cost(provider.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: total})
	planner := p.Planner
	planner.Clock = g.Clock
	t.Estimate, t.Prompt = est, prompt
	t.Counters = planner.Plan(t.Counters[:0], subjects, r.Model, est)
	if err := p.checkPriced(t, r); err != nil {
		return err
	}
	return g.reserve(ctx, p, t, r)
}

// ReserveRequest reserves a request that uses no tokens and costs nothing
// (count_tokens, which Weir answers itself) on the request-rate and
// parallel counters only: it is refused at an RPM or parallel limit like
// any request, but no budget or TPM limit applies to it. Release it when
// answered.
func (g *Gate) ReserveRequest(ctx context.Context, p *Policy, t *Ticket, r *Request) error {
	subjects, err := g.subjects(p, t, r)
	if err != nil || len(subjects) == 0 {
		return err
	}
	planner := p.Planner
	planner.Clock = g.Clock
	all := planner.Plan(t.Counters[:0], subjects, r.Model, limits.Estimate{})
	t.Counters = all[:0]
	for _, c := range all {
		if c.Dim == limits.Requests || c.Dim == limits.Parallel {
			t.Counters = append(t.Counters, c)
		}
	}
	return g.reserve(ctx, p, t, r)
}

// subjects are the request's subjects, most specific first: its session,
// its key, the key's user, team and organization, and the gateway.
func (g *Gate) subjects(p *Policy, t *Ticket, r *Request) ([]limits.Subject, error) {
	subjects := make([]limits.Subject, 0, 6)
	if p.Session != nil && r.Session != "" {
		if err := checkSessionID(p.Session.Header, r.Session); err != nil {
			return nil, err
		}
		subjects = append(subjects, p.session(t.Key, r.Session))
	}
	if k := t.Key; k != nil {
		subjects = append(subjects, limits.Subject{Scope: "key", ID: k.CounterID(), Limits: k.Limits, Models: k.ModelLimits})
		if k.UserID != "" {
			if s, ok := g.user(p, k.UserID); ok {
				subjects = append(subjects, s)
			}
		}
		org := k.OrgID
		if k.TeamID != "" {
			if s, teamOrg, ok := g.team(p, k.TeamID); ok {
				subjects = append(subjects, s)
				if org == "" {
					org = teamOrg
				}
			}
		}
		if s, ok := p.Orgs[org]; ok {
			subjects = append(subjects, s)
		}
	}
	if p.Global != nil {
		subjects = append(subjects, *p.Global)
	}
	return subjects, nil
}

// reserve reserves t's planned counters, all or nothing.
func (g *Gate) reserve(ctx context.Context, p *Policy, t *Ticket, r *Request) error {
	if len(t.Counters) == 0 {
		return nil
	}
	if r.ID == "" {
		// An empty id would be shared by every request.
		return errors.New("admission: reservation without an id")
	}
	res, err := g.Store.Reserve(ctx, r.ID, t.Counters, g.lifetime(r))
	if err != nil {
		return err
	}
	if res.Duplicate {
		// Ids are drawn at random per request, so this is a collision or a
		// bug, never a client's retry. Refusing is the only safe answer:
		// the request holds no reservation, and serving it would be free.
		return fmt.Errorf("admission: reservation id %s is already in use", r.ID)
	}
	t.Result = res
	if !res.OK {
		err := res.Err(t.Counters)
		if p.BudgetStatus == 402 && t.Counters[res.Refused].Dim == limits.Cost {
			return fmt.Errorf("%w: %w", errs.ErrPaymentRequired, err)
		}
		return err
	}
	t.Reserved = true
	t.SoftAlert = res.SoftCrossed(t.Counters)
	return nil
}

// count is the prompt estimate: the backend-aware count when the
// estimator has one ([tokens.ModelEstimator]: images by their provider's
// cost).
func (g *Gate) count(body []byte, provider, model string) (int64, error) {
	if m, ok := g.Tokens.(tokens.ModelEstimator); ok {
		return int64(m.CountFor(body, provider, model)), nil
	}
	n, err := g.Tokens.Count(body)
	return int64(n), err
}

// lifetime is how long r's reservation waits for its settle.
func (g *Gate) lifetime(r *Request) time.Duration {
	if r.Timeout > 0 {
		return r.Timeout + ReservationGrace
	}
	if g.TTL > 0 {
		return g.TTL
	}
	return config.DefaultBackendTimeout + ReservationGrace
}

// checkPriced fails closed: a model without a price (and no fallback price
// configured) would cost nothing against a budget, so a request that some
// budget applies to is refused. Soft budgets (no limit) only track, and
// let it through at $0.
func (p *Policy) checkPriced(t *Ticket, r *Request) error {
	if t.Priced || p.Prices == nil {
		return nil
	}
	for i := range t.Counters {
		c := &t.Counters[i]
		if c.Dim == limits.Cost && c.Limit != limits.Unlimited {
			return errs.Refuse(errs.RuleModelUnpriced, fmt.Errorf("%w: the %s applies, but model %q at provider %s has no price; an operator must price it under pricing, or set a fallback price (model \"*\")",
				errs.ErrUnpriced, c.Rule(), r.Upstream, r.Provider))
		}
	}
	return nil
}

// RateHeaders are the x-ratelimit-* headers for the client.
func (t *Ticket) RateHeaders() []provider.Header {
	if len(t.Counters) == 0 || len(t.Result.States) == 0 {
		return nil
	}
	h := t.Result.RateHeaders(t.Counters)
	var out []provider.Header
	add := func(kind string, l limits.Limit) {
		if !l.Set {
			return
		}
		out = append(out,
			provider.Header{Key: "x-ratelimit-limit-" + kind, Value: strconv.FormatInt(l.Limit, 10)},
			provider.Header{Key: "x-ratelimit-remaining-" + kind, Value: strconv.FormatInt(l.Remaining, 10)},
			provider.Header{Key: "x-ratelimit-reset-" + kind, Value: resetValue(l.Reset)},
		)
	}
	add("requests", h.Requests)
	add("tokens", h.Tokens)
	if t.SoftAlert {
		out = append(out, provider.Header{Key: "x-weir-soft-budget-exceeded", Value: "true"})
	}
	return out
}

// resetValue formats a reset the way OpenAI does ("1s", "6m0s").
func resetValue(d time.Duration) string {
	if d < time.Second {
		d = time.Second
	}
	return d.Round(time.Second).String()
}

// Outcome is how a request ended.
type Outcome struct {
	// ClientRequestID is the x-request-id Envoy saw (the client's, for a
	// request Envoy treats as internal), kept in the spend record for
	// correlation only.
	ClientRequestID string
	Status          int
	Usage           provider.Usage
	Backend         string
	Provider        string
	Upstream        string
	Model           string
	Latency         time.Duration
	// Partial: a stream that ended before the provider's final usage,
	// whose Usage the router made from what it delivered.
	Partial bool
}

// PromptEstimate is the ticket's reserved prompt estimate, or, when
// nothing was reserved, the same estimate made now. It stands in for the
// prompt usage of a stream that ended before the provider reported it.
func (g *Gate) PromptEstimate(t *Ticket, body []byte) int64 {
	if t.Prompt > 0 || g.Tokens == nil {
		return t.Prompt
	}
	n, err := g.Tokens.Count(body)
	if err != nil {
		return 0
	}
	return int64(n)
}

// Cost prices usage at the ticket's price.
func (t *Ticket) Cost(u provider.Usage) budget.MicroUSD {
	if !u.Known() {
		return 0
	}
	return t.Price.Cost(u)
}

// Settle replaces the reservation by actual usage (zero for a failed
// request, which releases it) and writes the spend record. It runs once
// per request, when the router-level stream ends. id is the reservation's
// id ([Request.ID]), also the spend record's RequestID.
func (g *Gate) Settle(ctx context.Context, t *Ticket, id string, o *Outcome) {
	cost := t.Cost(o.Usage)
	if t.Reserved {
		// The request happened, so it keeps its place in the request
		// rate; a failure releases its cost and tokens. A stream cut early
		// settles what the router observed or delivered (o.Partial).
		u := limits.Usage{Requests: 1}
		if o.Status < 400 || o.Usage.Known() {
			u.Tokens, u.Cost = o.Usage.PromptTokens+o.Usage.CompletionTokens, cost
		}
		// The request context may already be cancelled (the client left);
		// the settle must still happen.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if _, err := g.Store.Settle(sctx, id, t.Counters, u); err != nil {
			g.log().Warn("limits: settle failed; the reservation expires by itself", "request_id", id, "err", err)
		}
		cancel()
	}
	if g.Spend == nil {
		return
	}
	rec := spend.Record{
		RequestID: id, ClientRequestID: o.ClientRequestID, Time: g.Clock.Now().UTC(), Model: o.Model, Backend: o.Backend,
		PromptTokens: o.Usage.PromptTokens, CompletionTokens: o.Usage.CompletionTokens,
		CostMicroUSD: cost, LatencyMs: o.Latency.Milliseconds(), Status: o.Status,
		Partial: o.Partial,
	}
	if k := t.Key; k != nil {
		rec.KeyPrefix, rec.UserID, rec.TeamID, rec.OrgID = k.Hash.Short(), k.UserID, k.TeamID, k.OrgID
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.Spend.Append(sctx, rec); err != nil {
		g.log().Error("spend: record not written", "request_id", id, "err", err)
	}
}

// Release ends a reservation whose request never went upstream: refused
// by a check after admission, or answered by Weir itself
// (count_tokens). The request keeps its place in the request rate, its
// parallel slot frees, its reserved tokens and cost return, and no spend
// record is written, as nothing was spent. It does nothing when nothing
// is reserved, and at most once per ticket.
func (g *Gate) Release(ctx context.Context, t *Ticket, id string) {
	if !t.Reserved {
		return
	}
	t.Reserved = false
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := g.Store.Settle(sctx, id, t.Counters, limits.Usage{Requests: 1}); err != nil {
		g.log().Warn("limits: release failed; the reservation expires by itself", "request_id", id, "err", err)
	}
}

func (g *Gate) log() *slog.Logger {
	if g.Log != nil {
		return g.Log
	}
	return slog.Default()
}

// SetKeys replaces the config's keys.
func (g *Gate) SetKeys(configKeys []*vkey.Key) { g.Keys.Replace(configKeys) }
