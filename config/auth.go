package config

import (
	"fmt"
	"regexp"
	"time"
)

// Auth decides who may call the gateway and how much. Keys are declared
// here by hash (the admin API adds more at run time); budgets and rate
// limits apply per key, user, team, organization and globally, and the
// tightest applicable rule wins.
type Auth struct {
	// Mode is "open" (no key needed; the dev default) or "keys" (every
	// request needs a virtual key). Empty means "open" when no keys are
	// declared and no admin API is configured, else "keys".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Keys are virtual keys by SHA-256 hash (hex). Field names follow
	// LiteLLM's /key/generate.
	Keys []KeyConfig `yaml:"keys,omitempty" json:"keys,omitempty"`
	// Users, Teams and Orgs carry limits of their own.
	Users []SubjectConfig `yaml:"users,omitempty" json:"users,omitempty"`
	Teams []SubjectConfig `yaml:"teams,omitempty" json:"teams,omitempty"`
	Orgs  []SubjectConfig `yaml:"organizations,omitempty" json:"organizations,omitempty"`
	// Global caps everything.
	Global *LimitsConfig `yaml:"global,omitempty" json:"global,omitempty"`
	// OptionalPaths are path prefixes that need no key (internal traffic);
	// a key presented there is still checked and counted.
	OptionalPaths []string `yaml:"optional_paths,omitempty" json:"optional_paths,omitempty"`
}

// KeyConfig is a virtual key declared in the config.
type KeyConfig struct {
	// Hash is the hex SHA-256 of the key (`weir key hash` prints it).
	Hash  string `yaml:"hash" json:"hash"`
	Alias string `yaml:"key_alias,omitempty" json:"key_alias,omitempty"`
	// LimitsID names the key's budget and rate counters instead of its
	// hash; keys with the same id share them. The controller sets a
	// VirtualKey's UID, so a rotated key keeps its spend. At most 128 of
	// A-Z a-z 0-9 . _ -.
	LimitsID     string            `yaml:"limits_id,omitempty" json:"limits_id,omitempty"`
	Models       []string          `yaml:"models,omitempty" json:"models,omitempty"`
	Aliases      map[string]string `yaml:"aliases,omitempty" json:"aliases,omitempty"`
	ExpiresAt    *time.Time        `yaml:"expires,omitempty" json:"expires,omitempty"`
	Blocked      bool              `yaml:"blocked,omitempty" json:"blocked,omitempty"`
	UserID       string            `yaml:"user_id,omitempty" json:"user_id,omitempty"`
	TeamID       string            `yaml:"team_id,omitempty" json:"team_id,omitempty"`
	OrgID        string            `yaml:"organization_id,omitempty" json:"organization_id,omitempty"`
	Metadata     map[string]string `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	Tags         []string          `yaml:"tags,omitempty" json:"tags,omitempty"`
	LimitsConfig `yaml:",inline" json:",inline"`
	// ModelLimits are per-model limits by model name.
	ModelLimits map[string]LimitsConfig `yaml:"model_limits,omitempty" json:"model_limits,omitempty"`
}

// SubjectConfig is a user, team or organization.
type SubjectConfig struct {
	ID           string `yaml:"id" json:"id"`
	LimitsConfig `yaml:",inline" json:",inline"`
	ModelLimits  map[string]LimitsConfig `yaml:"model_limits,omitempty" json:"model_limits,omitempty"`
	// OrgID places a team in an organization.
	OrgID string `yaml:"organization_id,omitempty" json:"organization_id,omitempty"`
	// Models, for a team or a user, are the models its keys may use
	// (LiteLLM's team and user "models"): exact names, "provider/*"
	// prefixes or "*", matched against the name after the key's aliases,
	// as a key's own models are. A request must be allowed by the key, its
	// user and its team. Empty means no restriction. Not for organizations.
	Models []string `yaml:"models,omitempty" json:"models,omitempty"`
	// Blocked, for a team only, refuses every key of the team (403).
	Blocked bool `yaml:"blocked,omitempty" json:"blocked,omitempty"`
}

// LimitsConfig are budgets and rate limits. Zero means no limit.
type LimitsConfig struct {
	MaxBudget  float64 `yaml:"max_budget,omitempty" json:"max_budget,omitempty"`   // USD per budget_duration
	SoftBudget float64 `yaml:"soft_budget,omitempty" json:"soft_budget,omitempty"` // USD; alert only
	// BudgetDuration is 1h, 1d, 7d, 30d or 1mo; empty means the budget
	// never resets.
	BudgetDuration string `yaml:"budget_duration,omitempty" json:"budget_duration,omitempty"`
	RPM            int64  `yaml:"rpm_limit,omitempty" json:"rpm_limit,omitempty"`
	TPM            int64  `yaml:"tpm_limit,omitempty" json:"tpm_limit,omitempty"`
	MaxParallel    int64  `yaml:"max_parallel_requests,omitempty" json:"max_parallel_requests,omitempty"`
}

// Limits configures where counters live and what happens when they cannot
// be reached.
type Limits struct {
	// Store is "memory" (one replica; the default) or "redis".
	Store string `yaml:"store,omitempty" json:"store,omitempty"`
	Redis *Redis `yaml:"redis,omitempty" json:"redis,omitempty"`
	// FailMode is what happens when Redis is unreachable: "closed" (503;
	// the default, since a budget must hold) or "open" (serve, count
	// locally, reconcile when Redis returns).
	FailMode string `yaml:"fail_mode,omitempty" json:"fail_mode,omitempty"`
	// Breaker stops calling Redis after repeated failures, so that the
	// fail mode answers at once instead of after the client's timeout;
	// nil uses the defaults.
	Breaker *Breaker `yaml:"breaker,omitempty" json:"breaker,omitempty"`
	// TimeZone aligns budget periods (IANA name); empty is UTC.
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	// BudgetStatus is the status of an exhausted budget: 429 (default) or 402.
	BudgetStatus int `yaml:"budget_status,omitempty" json:"budget_status,omitempty"`
	// CompletionEstimate is the completion tokens reserved when a request
	// sets no max_tokens; settling corrects it. Zero means 1024.
	CompletionEstimate int64 `yaml:"completion_estimate,omitempty" json:"completion_estimate,omitempty"`
	// MaxReserveTokens caps the completion tokens one request reserves,
	// whatever its max_tokens; zero means no cap. The settle still charges
	// the actual usage, so with a cap a budget or TPM limit can be
	// overshot by at most (actual - capped estimate) per concurrent
	// request: it trades exactness for throughput when clients send large
	// max_tokens and use little of them.
	MaxReserveTokens int64 `yaml:"max_reserve_tokens,omitempty" json:"max_reserve_tokens,omitempty"`
	// RateWindow is "sliding" (default) or "fixed" for RPM and TPM.
	RateWindow string `yaml:"rate_window,omitempty" json:"rate_window,omitempty"`
	// CostHeader adds x-weir-cost (USD) to responses.
	CostHeader bool `yaml:"cost_header,omitempty" json:"cost_header,omitempty"`
	// Session gives every agent session, named by a request header, its
	// own budget and rate limits under its key; nil disables them.
	Session *Session `yaml:"session,omitempty" json:"session,omitempty"`
}

// Session limits each session a request names in Header: the counters are
// the key's hash and the header's value (the value alone without a key),
// so two keys never share a session. A session's budget lasts as long as
// the session is active: it is forgotten TTL after its last request (or
// at the end of budget_duration, if set, whichever comes first).
type Session struct {
	// Header names the session, for example x-session-id. A request
	// without it is not a session's; a value that is not 1 to
	// [MaxSessionID] visible ASCII characters is refused (400).
	Header string `yaml:"header" json:"header"`
	// TTL is the idle expiry (a Go duration); empty means 24h.
	TTL          string `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	LimitsConfig `yaml:",inline" json:",inline"`
}

// MaxSessionID is the longest session header value accepted.
const MaxSessionID = 128

// DefaultSessionTTL is a session's idle expiry when ttl is empty.
const DefaultSessionTTL = 24 * time.Hour

// IdleTTL parses TTL; call it on a validated config.
func (s *Session) IdleTTL() (time.Duration, error) {
	if s.TTL == "" {
		return DefaultSessionTTL, nil
	}
	return time.ParseDuration(s.TTL)
}

var limitsID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

var headerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Breaker configures the limits store's circuit breaker: after Failures
// consecutive Redis failures it opens, and requests get the fail mode's
// answer without calling Redis; every ProbeInterval one request tries
// Redis again, and its success closes the breaker.
type Breaker struct {
	// Failures is the consecutive failures that open it; 0 means 5.
	Failures int `yaml:"failures,omitempty" json:"failures,omitempty"`
	// ProbeInterval is the time between probes while open; 0 means 2s.
	ProbeInterval Duration `yaml:"probe_interval,omitempty" json:"probe_interval,omitempty"`
}

// Redis is a Redis server address and credentials. One client is built
// from it and shared by the limits store, the admin API's key store and
// the spend stream.
type Redis struct {
	Addr string `yaml:"addr" json:"addr"`
	// Username is the ACL user (Redis 6+); empty authenticates as
	// "default" with Password alone (requirepass).
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password Secret `yaml:"password,omitempty" json:"password,omitempty"`
	DB       int    `yaml:"db,omitempty" json:"db,omitempty"`
	// TLS, when enabled, connects over TLS 1.2 or later.
	TLS *RedisTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
}

// RedisTLS is how Weir verifies Redis and, optionally, proves itself to it.
type RedisTLS struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// CAFile is a PEM bundle of the CAs that may sign the server's
	// certificate; empty means the system roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// ServerName is the name the certificate must carry; empty means the
	// host part of addr.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// CertFile and KeyFile are a client certificate and its key (PEM),
	// for a server with tls-auth-clients; both or neither.
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
}

// DefaultCompletionEstimate is reserved for a request without max_tokens.
const DefaultCompletionEstimate = 1024

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

var periods = map[string]bool{"": true, "1h": true, "1d": true, "7d": true, "30d": true, "1mo": true}

func (l *LimitsConfig) validate(v *validator, p string) {
	if l.MaxBudget < 0 || l.SoftBudget < 0 || l.RPM < 0 || l.TPM < 0 || l.MaxParallel < 0 {
		v.addf(p, "limits must not be negative")
	}
	if !periods[l.BudgetDuration] {
		v.addf(p+".budget_duration", "%q: want 1h, 1d, 7d, 30d or 1mo", l.BudgetDuration)
	}
}

func (a *Auth) validate(v *validator) {
	switch a.Mode {
	case "", "open", "keys":
	default:
		v.addf("auth.mode", "%q: want open or keys", a.Mode)
	}
	seen := map[string]bool{}
	for i := range a.Keys {
		k := &a.Keys[i]
		p := fmt.Sprintf("auth.keys[%d]", i)
		if !hexHash.MatchString(k.Hash) {
			v.addf(p+".hash", "must be 64 lower-case hex characters (the SHA-256 of the key), never the key itself")
		} else if seen[k.Hash] {
			v.addf(p+".hash", "duplicate key")
		}
		seen[k.Hash] = true
		if k.LimitsID != "" && !limitsID.MatchString(k.LimitsID) {
			// It becomes part of counter names in Redis, where ':' separates
			// a session from its key.
			v.addf(p+".limits_id", "%q: want 1 to 128 of A-Z a-z 0-9 . _ -", k.LimitsID)
		}
		k.LimitsConfig.validate(v, p)
		for m, l := range k.ModelLimits {
			l.validate(v, p+".model_limits["+m+"]")
		}
	}
	for _, g := range []struct {
		name string
		s    []SubjectConfig
	}{{"users", a.Users}, {"teams", a.Teams}, {"organizations", a.Orgs}} {
		ids := map[string]bool{}
		for i := range g.s {
			s := &g.s[i]
			p := fmt.Sprintf("auth.%s[%d]", g.name, i)
			if s.ID == "" {
				v.addf(p+".id", "required")
			} else if ids[s.ID] {
				v.addf(p+".id", "duplicate %q", s.ID)
			}
			ids[s.ID] = true
			s.LimitsConfig.validate(v, p)
			if s.Blocked && g.name != "teams" {
				v.addf(p+".blocked", "only teams can be blocked; block the keys instead")
			}
			if len(s.Models) > 0 && g.name == "organizations" {
				v.addf(p+".models", "organizations have no model list; set models on their teams or keys")
			}
			for j, m := range s.Models {
				if m == "" {
					v.addf(fmt.Sprintf("%s.models[%d]", p, j), "empty model name")
				}
			}
		}
	}
	if a.Global != nil {
		a.Global.validate(v, "auth.global")
	}
}

func (l *Limits) validate(v *validator) {
	switch l.Store {
	case "", "memory":
	case "redis":
		if l.Redis == nil || l.Redis.Addr == "" {
			v.addf("limits.redis.addr", "required with store: redis")
		}
	default:
		v.addf("limits.store", "%q: want memory or redis", l.Store)
	}
	switch l.FailMode {
	case "", "open", "closed":
	default:
		v.addf("limits.fail_mode", "%q: want open or closed", l.FailMode)
	}
	if b := l.Breaker; b != nil && (b.Failures < 0 || b.ProbeInterval < 0) {
		v.addf("limits.breaker", "failures and probe_interval must not be negative")
	}
	if r := l.Redis; r != nil && r.TLS != nil {
		t := r.TLS
		switch {
		case !t.Enabled && (t.CAFile != "" || t.ServerName != "" || t.CertFile != "" || t.KeyFile != ""):
			// Settings without enabled would connect in plain text while
			// the operator believes the link is encrypted.
			v.addf("limits.redis.tls.enabled", "TLS settings are given but enabled is false; set enabled: true or remove them")
		case (t.CertFile == "") != (t.KeyFile == ""):
			v.addf("limits.redis.tls", "cert_file and key_file go together")
		}
	}
	if l.TimeZone != "" {
		if _, err := time.LoadLocation(l.TimeZone); err != nil {
			v.addf("limits.time_zone", "%v", err)
		}
	}
	switch l.BudgetStatus {
	case 0, 429, 402:
	default:
		v.addf("limits.budget_status", "%d: want 429 or 402", l.BudgetStatus)
	}
	switch l.RateWindow {
	case "", "sliding", "fixed":
	default:
		v.addf("limits.rate_window", "%q: want sliding or fixed", l.RateWindow)
	}
	if l.CompletionEstimate < 0 {
		v.addf("limits.completion_estimate", "must not be negative")
	}
	if s := l.Session; s != nil {
		switch {
		case !headerName.MatchString(s.Header):
			v.addf("limits.session.header", "%q: want a lower-case header name such as x-session-id", s.Header)
		case s.Header == "authorization" || s.Header == "x-api-key" || s.Header == HeaderRequestID:
			v.addf("limits.session.header", "%q carries credentials or the request id; choose another header", s.Header)
		}
		if d, err := s.IdleTTL(); err != nil || d < time.Minute {
			v.addf("limits.session.ttl", "%q: want a duration of at least 1m", s.TTL)
		}
		s.LimitsConfig.validate(v, "limits.session")
		if s.LimitsConfig == (LimitsConfig{}) {
			v.addf("limits.session", "sets no limit; set max_budget, rpm_limit, tpm_limit or max_parallel_requests")
		}
	}
	if l.MaxReserveTokens < 0 {
		v.addf("limits.max_reserve_tokens", "must not be negative")
	}
}

// KeysRequired reports whether requests need a virtual key.
func (a *Auth) KeysRequired() bool {
	switch a.Mode {
	case "keys":
		return true
	case "open":
		return false
	}
	return len(a.Keys) > 0
}

// Spend configures where spend records go besides the admin API's totals.
type Spend struct {
	// File appends one JSON record per line (fsynced); empty disables it.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Stdout writes records to standard output.
	Stdout bool `yaml:"stdout,omitempty" json:"stdout,omitempty"`
	// QueueMax bounds the in-memory spend queue (store: memory) while a
	// sink fails: past it the oldest waiting records are dropped, counted
	// in weir_spend_dropped_total and logged. Zero means 100,000: ten
	// seconds at 10,000 requests/s, about 40 MB.
	QueueMax int `yaml:"queue_max,omitempty" json:"queue_max,omitempty"`
}

// Pricing overrides the embedded pricing table, per model or per backend
// (self-hosted models). Prices are USD per million tokens. Model "*", with
// no backend or provider, is the fallback price of every model nothing
// else prices; without it, a budgeted request for such a model is refused.
type PriceOverride struct {
	Backend     string  `yaml:"backend,omitempty" json:"backend,omitempty"`
	Provider    string  `yaml:"provider,omitempty" json:"provider,omitempty"`
	Model       string  `yaml:"model,omitempty" json:"model,omitempty"`
	Input       float64 `yaml:"input" json:"input"`
	Output      float64 `yaml:"output" json:"output"`
	CachedInput float64 `yaml:"cached_input,omitempty" json:"cached_input,omitempty"`
	CacheWrite  float64 `yaml:"cache_write,omitempty" json:"cache_write,omitempty"`
}
