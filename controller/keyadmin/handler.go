// Package keyadmin is Weir's admin API for virtual keys, teams, users and
// spend: an http.Handler with LiteLLM-compatible endpoints and field
// names and its own master key. It is control plane: it writes a
// [keystore.Store] (in memory, or in Redis shared by replicas) that each
// replica's [keystore.Syncer] mirrors into its [vkey.Keyring], and reads
// the spend the replicas write into a [book.Reader]. The data plane never
// imports it (test/arch); the binaries wire it on its own listener.
//
// It is meant for a separate listener (never the public port). It reads
// only the method, path, query, body and Authorization header: not Host,
// not X-Forwarded-*, not any x-weir-* header a client could set.
//
// A generated key is returned once, in the /key/generate (or /user/new)
// response; the store keeps its SHA-256 only. Keys are named in requests
// by the key itself ("sk-weir-...") or by its hash in hex ("token").
package keyadmin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/vkey"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Handler serves the admin API.
type Handler struct {
	store  keystore.Store
	spend  book.Reader
	master [sha256.Size]byte
	mux    *http.ServeMux
	// GlobalMaxBudget is reported by /global/spend (USD; 0 for none).
	GlobalMaxBudget float64
	Clock           budget.Clock
	Log             *slog.Logger
}

// New returns the admin API. masterKey must pass [CheckMasterKey]; spend
// may be nil, in which case spend endpoints report zero.
func New(masterKey string, store keystore.Store, sr book.Reader) (*Handler, error) {
	if err := CheckMasterKey(masterKey); err != nil {
		return nil, err
	}
	if sr == nil {
		sr = &book.Memory{}
	}
	h := &Handler{store: store, spend: sr, master: sha256.Sum256([]byte(masterKey)), mux: http.NewServeMux()}
	for _, r := range []struct {
		method, path string
		fn           func(context.Context, *http.Request) (any, error)
	}{
		{"POST", "/key/generate", h.keyGenerate},
		{"POST", "/key/update", h.keyUpdate},
		{"POST", "/key/delete", h.keyDelete},
		{"GET POST", "/key/info", h.keyInfo},
		{"GET", "/key/list", h.keyList},
		{"POST", "/key/block", h.keyBlock(true)},
		{"POST", "/key/unblock", h.keyBlock(false)},
		{"POST", "/team/new", h.teamNew},
		{"POST", "/team/update", h.teamUpdate},
		{"POST", "/team/block", h.teamBlock(true)},
		{"POST", "/team/unblock", h.teamBlock(false)},
		{"GET", "/team/info", h.teamInfo},
		{"POST", "/user/new", h.userNew},
		{"POST", "/user/update", h.userUpdate},
		{"GET", "/spend/logs", h.spendLogs},
		{"GET", "/global/spend", h.globalSpend},
	} {
		fn := r.fn
		methods := strings.Fields(r.method)
		h.mux.HandleFunc(r.path, func(w http.ResponseWriter, req *http.Request) {
			if !slices.Contains(methods, req.Method) {
				w.Header().Set("Allow", strings.Join(methods, ", "))
				h.fail(w, fmt.Errorf("%w: use %s", errs.ErrMethodNotAllowed, strings.Join(methods, " or ")))
				return
			}
			v, err := fn(req.Context(), req)
			if err != nil {
				h.fail(w, err)
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	return h, nil
}

// Builder returns [New] bound to masterKey, in the shape the extproc
// daemon takes (daemon.Options.KeyAdmin): the daemon builds the API once
// its store and spend book exist, and serves it on its own listener.
func Builder(masterKey string) func(keystore.Store, book.Reader) (http.Handler, error) {
	return func(store keystore.Store, sr book.Reader) (http.Handler, error) {
		h, err := New(masterKey, store, sr)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return h, nil
	}
}

// ServeHTTP checks the master key, then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="weir-admin"`)
		h.fail(w, fmt.Errorf("%w: send the master key as 'Authorization: Bearer <key>'", errs.ErrUnauthorized))
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.fail(w, fmt.Errorf("%w: no admin endpoint %s", errs.ErrNotFound, r.URL.Path))
		return
	}
	if err := noKeyInQuery(r); err != nil {
		h.fail(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	h.mux.ServeHTTP(w, r)
}

// CheckMasterKey refuses master keys that are easy to guess: shorter than
// 32 characters, made of fewer than 8 distinct characters, or one block
// repeated ("abcabc...", "0123456789abcdef0123456789abcdef"). It is a
// check for obvious mistakes, not an entropy meter; generate the key with
// `openssl rand -hex 32`. Leading or trailing whitespace is refused too:
// the Authorization header loses it, so such a key could never match. The
// error never repeats the key.
func CheckMasterKey(k string) error {
	const hint = "; generate one with: openssl rand -hex 32"
	if len(k) < minMasterLen {
		return fmt.Errorf("keyadmin: the master key must be at least %d characters, it has %d%s", minMasterLen, len(k), hint)
	}
	if strings.TrimSpace(k) != k {
		return errors.New("keyadmin: the master key starts or ends with whitespace, which the Authorization header drops" + hint)
	}
	var seen [256]bool
	distinct := 0
	for i := 0; i < len(k); i++ {
		if !seen[k[i]] {
			seen[k[i]], distinct = true, distinct+1
		}
	}
	if distinct < minMasterDistinct {
		return fmt.Errorf("keyadmin: the master key uses only %d distinct characters (at least %d)%s", distinct, minMasterDistinct, hint)
	}
	for p := 1; p <= len(k)/2; p++ {
		if k[p:] == k[:len(k)-p] {
			return fmt.Errorf("keyadmin: the master key repeats a block of %d characters%s", p, hint)
		}
	}
	return nil
}

// The master key's floor: 32 characters (128 bits as hex), 8 of them
// distinct.
const (
	minMasterLen      = 32
	minMasterDistinct = 8
)

// noKeyInQuery refuses a request whose query string holds a Weir key: URLs
// end up in proxy logs, shell history and browser history, so a key there
// is as good as leaked. The answer says what to send instead.
func noKeyInQuery(r *http.Request) error {
	for name, vs := range r.URL.Query() {
		if !strings.Contains(name, vkey.Prefix) && !slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, vkey.Prefix) }) {
			continue
		}
		return badRequest("a key in the query string (?%s=): keys are never accepted in URLs, which proxies and logs keep. "+
			"Name the key by its SHA-256 in hex (its \"token\"), or send it in a POST body (POST /key/info {\"key\": \"sk-weir-...\"})", truncate(name))
	}
	return nil
}

// authorized compares hashes in constant time: neither the length nor the
// content of the master key shows in the timing.
func (h *Handler) authorized(auth string) bool {
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[7:])))
	return subtle.ConstantTimeCompare(got[:], h.master[:]) == 1
}

// fail is the one place errors become responses: errs maps sentinels to a
// status and an OpenAI-shaped body; anything else is a 500 whose detail
// goes to the log only.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fmt.Errorf("%w: the limit is %d bytes", errs.ErrBodyTooLarge, maxBody)
	}
	status := errs.Status(err)
	if status >= 500 {
		h.log().Error("keyadmin: request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errs.Body(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, errs.Body(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

func (h *Handler) now() time.Time { return h.Clock.Now().UTC() }

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errs.ErrInvalidRequest}, a...)...)
}

// Bounds on what a record may hold. Every key is held in every replica's
// memory (about 2.5 KB for a typical one), so these keep a record at a few
// tens of KB at most: 1,000 list or map entries (models, tags, aliases,
// teams, per-model limits), names of 256 bytes, and 8 KiB of metadata.
const (
	maxNameLen       = 256
	maxListLen       = 1000
	maxMetadataBytes = 8 << 10
)

// fieldSet is the fields an endpoint accepts; any other is a 400 that
// names it, so a misspelt or unsupported setting ("expires" for
// "duration") is never silently ignored.
type fieldSet map[string]bool

func fields(groups ...[]string) fieldSet {
	f := fieldSet{}
	for _, g := range groups {
		for _, n := range g {
			f[n] = true
		}
	}
	return f
}

var (
	limitFields = []string{"max_budget", "soft_budget", "budget_duration", "rpm_limit", "tpm_limit", "max_parallel_requests",
		"model_limits", "model_max_budget", "model_rpm_limit", "model_tpm_limit"}
	keySettings = []string{"key_alias", "duration", "models", "aliases", "team_id", "user_id", "organization_id",
		"metadata", "tags", "blocked"}
	teamSettings = []string{"team_id", "team_alias", "organization_id", "models", "metadata", "blocked"}
	userSettings = []string{"user_id", "user_email", "user_role", "teams", "models", "metadata"}

	// "key" is accepted by /key/generate only to refuse it with a reason.
	generateFields   = fields(limitFields, keySettings, []string{"key"})
	keyUpdateFields  = fields(limitFields, keySettings, []string{"key", "token", "revision"})
	keyRefFields     = fields([]string{"key", "token"})
	keyDeleteFields  = fields([]string{"keys", "key_aliases", "team_id", "user_id"})
	teamNewFields    = fields(limitFields, teamSettings)
	teamUpdateFields = fields(limitFields, teamSettings, []string{"revision"})
	teamRefFields    = fields([]string{"team_id"})
	userNewFields    = fields(limitFields, userSettings, []string{"auto_create_key", "duration"})
	userUpdateFields = fields(limitFields, userSettings, []string{"revision"})
)

// unknown returns a 400 naming the fields of m that allowed lacks.
func (allowed fieldSet) unknown(m map[string]json.RawMessage) error {
	var bad []string
	for k := range m {
		if !allowed[k] {
			bad = append(bad, strconv.Quote(truncate(k)))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	if len(bad) > 10 {
		bad = append(bad[:10], "...")
	}
	known := slices.Sorted(maps.Keys(allowed))
	return badRequest("unknown field(s) %s; this endpoint accepts %s", strings.Join(bad, ", "), strings.Join(known, ", "))
}

// truncate shortens a client's string before it goes into a message, and
// never echoes a key.
func truncate(s string) string {
	if strings.Contains(s, vkey.Prefix) {
		return "(a key)"
	}
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}

// decode reads a JSON object body into a field map, refusing fields that
// allowed does not name.
func decode(r *http.Request, allowed fieldSet) (map[string]json.RawMessage, error) {
	m, err := decodeAny(r)
	if err != nil {
		return nil, err
	}
	if err := allowed.unknown(m); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeAny(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if len(strings.TrimSpace(string(b))) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errs.ErrInvalidJSON, err)
	}
	if m == nil { // "null"
		return nil, badRequest("the body must be a JSON object")
	}
	return m, nil
}

func field[T any](m map[string]json.RawMessage, name string, dst *T) (bool, error) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, badRequest("field %q: %v", name, err)
	}
	return true, nil
}

// settings are the fields a key, team or user request may set, with
// LiteLLM's names. Fields absent from the request are left alone.
type settings struct {
	m map[string]json.RawMessage
}

// validName checks a name, id or alias: at most maxNameLen bytes, and no
// control characters (C0, DEL, C1), bidirectional controls (U+061C,
// U+200E/F, U+202A-E, U+2066-9) or line/paragraph separators. These are
// echoed by the API and written to logs and spend records, where they
// forge lines, colour terminals or display one name as another
// ("gpt\u202egnp.exe" shows as "gptexe.png").
func validName(field, s string) error {
	if len(s) > maxNameLen {
		return badRequest("%s is longer than %d bytes", field, maxNameLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == 0x061C || r == 0x200E || r == 0x200F || r >= 0x202A && r <= 0x202E ||
			r >= 0x2066 && r <= 0x2069 || r == 0x2028 || r == 0x2029 {
			return badRequest("%s holds the control character %U; names, ids and aliases may not hold control, "+
				"bidirectional or line-separator characters", field, r)
		}
	}
	return nil
}

func (s settings) str(name string, dst *string) error {
	if ok, err := field(s.m, name, dst); err != nil || !ok {
		return err
	}
	return validName(name, *dst)
}

func (s settings) strs(name string, dst *[]string) error {
	if ok, err := field(s.m, name, dst); err != nil || !ok {
		return err
	}
	if len(*dst) > maxListLen {
		return badRequest("%s has %d entries; at most %d", name, len(*dst), maxListLen)
	}
	for _, v := range *dst {
		if err := validName(name, v); err != nil {
			return err
		}
	}
	return nil
}

func (s settings) boolean(name string, dst *bool) error { _, err := field(s.m, name, dst); return err }

// names checks a map's keys (and, with values set, its values) as names.
func names[V any](field string, m map[string]V, values bool) error {
	if len(m) > maxListLen {
		return badRequest("%s has %d entries; at most %d", field, len(m), maxListLen)
	}
	for k, v := range m {
		if err := validName(field, k); err != nil {
			return err
		}
		if s, ok := any(v).(string); ok && values {
			if err := validName(field, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// metadata accepts any JSON object of at most maxMetadataBytes; non-string
// values are kept as their JSON text, since LiteLLM scripts send numbers
// and objects there. Keys are names; values are free text.
func (s settings) metadata(dst *map[string]string) error {
	if raw := s.m["metadata"]; len(raw) > maxMetadataBytes {
		return badRequest("metadata is %d bytes of JSON; at most %d", len(raw), maxMetadataBytes)
	}
	var m map[string]json.RawMessage
	ok, err := field(s.m, "metadata", &m)
	if err != nil || !ok {
		return err
	}
	if err := names("metadata", m, false); err != nil {
		return err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var str string
		if json.Unmarshal(v, &str) == nil {
			out[k] = str
		} else {
			out[k] = string(v)
		}
	}
	*dst = out
	return nil
}

func (s settings) limits(l *limits.Limits) error {
	for _, f := range []struct {
		name string
		dst  *float64
	}{{"max_budget", &l.MaxBudget}, {"soft_budget", &l.SoftBudget}} {
		if ok, err := field(s.m, f.name, f.dst); err != nil {
			return err
		} else if ok && (*f.dst < 0 || math.IsInf(*f.dst, 0)) {
			return badRequest("%s must be a non-negative number", f.name)
		}
	}
	var period string
	if ok, err := field(s.m, "budget_duration", &period); err != nil {
		return err
	} else if ok {
		p, err := budget.ParsePeriod(period)
		if err != nil {
			return badRequest("%v", err)
		}
		l.BudgetDuration = p
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"rpm_limit", &l.RPM}, {"tpm_limit", &l.TPM}, {"max_parallel_requests", &l.MaxParallel}} {
		if ok, err := field(s.m, f.name, f.dst); err != nil {
			return err
		} else if ok && *f.dst < 0 {
			return badRequest("%s must not be negative", f.name)
		}
	}
	return nil
}

// modelLimits reads model_limits (Weir's shape) and LiteLLM's
// model_max_budget, model_rpm_limit and model_tpm_limit maps.
func (s settings) modelLimits(dst *map[string]limits.Limits) error {
	ml := *dst
	set := func(model string, f func(*limits.Limits)) {
		if ml == nil {
			ml = map[string]limits.Limits{}
		}
		l := ml[model]
		f(&l)
		ml[model] = l
	}
	if raw, ok := s.m["model_limits"]; ok && string(raw) != "null" {
		// Strict: a misspelt limit inside ("rpm" for "rpm_limit") would
		// otherwise be no limit at all.
		var full map[string]limits.Limits
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&full); err != nil {
			return badRequest("field %q: %v", "model_limits", err)
		}
		if err := names("model_limits", full, false); err != nil {
			return err
		}
		for model, l := range full {
			if l.MaxBudget < 0 || l.SoftBudget < 0 || math.IsInf(l.MaxBudget, 0) || math.IsInf(l.SoftBudget, 0) ||
				l.RPM < 0 || l.TPM < 0 || l.MaxParallel < 0 {
				return badRequest("model_limits for %q must not be negative", model)
			}
		}
		ml = full
	}
	var budgets map[string]float64
	if _, err := field(s.m, "model_max_budget", &budgets); err != nil {
		return err
	}
	if err := names("model_max_budget", budgets, false); err != nil {
		return err
	}
	for m, v := range budgets {
		if v < 0 {
			return badRequest("model_max_budget for %q must not be negative", m)
		}
		set(m, func(l *limits.Limits) { l.MaxBudget = v })
	}
	for _, f := range []struct {
		name string
		put  func(*limits.Limits, int64)
	}{
		{"model_rpm_limit", func(l *limits.Limits, v int64) { l.RPM = v }},
		{"model_tpm_limit", func(l *limits.Limits, v int64) { l.TPM = v }},
	} {
		var m map[string]int64
		if _, err := field(s.m, f.name, &m); err != nil {
			return err
		}
		if err := names(f.name, m, false); err != nil {
			return err
		}
		for model, v := range m {
			if v < 0 {
				return badRequest("%s for %q must not be negative", f.name, model)
			}
			set(model, func(l *limits.Limits) { f.put(l, v) })
		}
	}
	if len(ml) > maxListLen {
		return badRequest("model limits name %d models; at most %d", len(ml), maxListLen)
	}
	*dst = ml
	return nil
}

// checkBudgets: a soft budget above the max budget would alert only after
// requests are refused. Zero max means no budget, so any soft one goes.
func checkBudgets(l limits.Limits, ml map[string]limits.Limits) error {
	if l.MaxBudget > 0 && l.SoftBudget > l.MaxBudget {
		return badRequest("soft_budget (%g) may not exceed max_budget (%g)", l.SoftBudget, l.MaxBudget)
	}
	for model, m := range ml {
		if m.MaxBudget > 0 && m.SoftBudget > m.MaxBudget {
			return badRequest("model_limits for %q: soft_budget (%g) may not exceed max_budget (%g)", model, m.SoftBudget, m.MaxBudget)
		}
	}
	return nil
}

// revisionFrom reads the optional revision of an update: the record's
// revision the client last read. 0 when absent.
func revisionFrom(m map[string]json.RawMessage) (int64, error) {
	var rev int64
	if ok, err := field(m, "revision", &rev); err != nil {
		return 0, err
	} else if ok && rev < 1 {
		return 0, badRequest("revision must be a positive integer")
	}
	return rev, nil
}

// casAttempts bounds the retries of an update whose compare-and-set lost
// to a concurrent write. Each loss means another write landed, so ten in a
// row is contention an admin API does not see; the client then gets 409.
const casAttempts = 10

// update runs a read-modify-write (fn: read, apply, Put) until the
// store's compare-and-set holds, so two concurrent updates of one record
// both land. A client that named the revision it read (want) gets the
// conflict as a 409 instead: it asked to change that revision only.
func update(want int64, fn func() error) error {
	for i := 1; ; i++ {
		err := fn()
		if want != 0 || i == casAttempts || !errors.Is(err, keystore.ErrConflict) {
			return err
		}
	}
}

// stale is the conflict of a client's revision with the stored one.
func stale(cur, want int64) error {
	return fmt.Errorf("%w: revision is %d, not %d; read it again", keystore.ErrConflict, cur, want)
}

// ParseDuration reads LiteLLM's durations: "30s", "10m", "12h", "7d",
// "2w", "1mo" (30 days).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		d      time.Duration
	}{{"mo", 30 * 24 * time.Hour}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			const maxDur = 100 * 365 * 24 * time.Hour
			if err != nil || v <= 0 || v > int64(maxDur/u.d) {
				break
			}
			return time.Duration(v) * u.d, nil
		}
	}
	return 0, badRequest("duration %q: want a positive number followed by s, m, h, d, w or mo", s)
}

// applyKey applies a request's settings to a key record.
func (h *Handler) applyKey(ctx context.Context, m map[string]json.RawMessage, k *keystore.KeyRecord) error {
	s := settings{m}
	var dur string
	if ok, err := field(m, "duration", &dur); err != nil {
		return err
	} else if ok {
		d, err := ParseDuration(dur)
		if err != nil {
			return err
		}
		t := h.now().Add(d)
		k.ExpiresAt = &t
	}
	for _, f := range []error{
		s.str("key_alias", &k.Alias),
		s.strs("models", &k.Models),
		s.boolean("blocked", &k.Blocked),
		s.str("user_id", &k.UserID),
		s.str("team_id", &k.TeamID),
		s.str("organization_id", &k.OrgID),
		s.strs("tags", &k.Tags),
		s.metadata(&k.Metadata),
		s.limits(&k.Limits),
		s.modelLimits(&k.ModelLimits),
	} {
		if f != nil {
			return f
		}
	}
	if _, err := field(m, "aliases", &k.Aliases); err != nil {
		return err
	}
	if err := names("aliases", k.Aliases, true); err != nil {
		return err
	}
	if err := checkBudgets(k.Limits, k.ModelLimits); err != nil {
		return err
	}
	if _, ok := m["team_id"]; ok && k.TeamID != "" {
		if _, err := h.store.GetTeam(ctx, k.TeamID); keystore.IsNotFound(err) {
			return badRequest("team_id %q does not exist; create it with /team/new", k.TeamID)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// keyOut is a key as the API shows it: the record, plus the key itself
// only in the response that created it.
type keyOut struct {
	Key string `json:"key,omitempty"`
	*keystore.KeyRecord
	Expires *time.Time `json:"expires"`
	Spend   float64    `json:"spend"`
}

func (h *Handler) keyOut(ctx context.Context, k *keystore.KeyRecord) (*keyOut, error) {
	sp, err := h.spend.Total(ctx, book.ScopeKey, k.Hash.Short())
	if err != nil {
		return nil, err
	}
	return &keyOut{KeyRecord: k, Expires: k.ExpiresAt, Spend: budget.USD(sp)}, nil
}

func (h *Handler) keyGenerate(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, generateFields)
	if err != nil {
		return nil, err
	}
	if _, ok := m["key"]; ok {
		return nil, badRequest("custom key values are not supported: Weir generates keys (declare existing ones in the config by hash)")
	}
	sec, err := vkey.Generate()
	if err != nil {
		return nil, err
	}
	now := h.now()
	k := &keystore.KeyRecord{Key: vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix()}, CreatedAt: now, UpdatedAt: now}
	if err := h.applyKey(ctx, m, k); err != nil {
		return nil, err
	}
	if err := h.store.PutKey(ctx, k, true); err != nil {
		return nil, err
	}
	out, err := h.keyOut(ctx, k)
	if err != nil {
		return nil, err
	}
	out.Key = sec.Reveal() // shown once
	return out, nil
}

// parseKeyRef reads a key reference: the key itself, or its hash in hex.
func parseKeyRef(s string) (vkey.Hash, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, vkey.Prefix) {
		sec, err := vkey.FromHeaders("", s)
		if err != nil {
			return vkey.Hash{}, fmt.Errorf("%w: not a Weir key", keystore.ErrNotFound)
		}
		return sec.Hash(), nil
	}
	h, err := vkey.ParseHash(s)
	if err != nil {
		return h, badRequest("key must be a Weir key (sk-weir-...) or its SHA-256 in hex")
	}
	return h, nil
}

func (h *Handler) keyFromBody(ctx context.Context, m map[string]json.RawMessage) (*keystore.KeyRecord, error) {
	var ref string
	ok, err := field(m, "key", &ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		if ok, err = field(m, "token", &ref); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, badRequest("missing \"key\"")
	}
	hash, err := parseKeyRef(ref)
	if err != nil {
		return nil, err
	}
	return h.store.GetKey(ctx, hash)
}

// keyUpdate applies the request to the key as it is when written: a
// concurrent update of other fields is kept (see update). With "revision",
// the update applies only to that revision of the key (else 409).
func (h *Handler) keyUpdate(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, keyUpdateFields)
	if err != nil {
		return nil, err
	}
	want, err := revisionFrom(m)
	if err != nil {
		return nil, err
	}
	var k *keystore.KeyRecord
	err = update(want, func() error {
		if k, err = h.keyFromBody(ctx, m); err != nil {
			return err
		}
		if want != 0 && k.Revision != want {
			return stale(k.Revision, want)
		}
		if err := h.applyKey(ctx, m, k); err != nil {
			return err
		}
		k.UpdatedAt = h.now()
		return h.store.PutKey(ctx, k, false)
	})
	if err != nil {
		return nil, err
	}
	return h.keyOut(ctx, k)
}

func (h *Handler) keyBlock(block bool) func(context.Context, *http.Request) (any, error) {
	return func(ctx context.Context, r *http.Request) (any, error) {
		m, err := decode(r, keyRefFields)
		if err != nil {
			return nil, err
		}
		var k *keystore.KeyRecord
		err = update(0, func() error {
			if k, err = h.keyFromBody(ctx, m); err != nil {
				return err
			}
			k.Blocked, k.UpdatedAt = block, h.now()
			return h.store.PutKey(ctx, k, false)
		})
		if err != nil {
			return nil, err
		}
		return h.keyOut(ctx, k)
	}
}

// keyDelete deletes keys named by key or hash, or by alias. An alias is
// unique per owner (team_id, user_id): with team_id or user_id in the
// request it names that owner's key; without, it must name exactly one key
// across owners. An empty alias is refused: it would name every key that
// has none (an unset shell variable must not delete keys in bulk).
func (h *Handler) keyDelete(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, keyDeleteFields)
	if err != nil {
		return nil, err
	}
	var refs, aliases []string
	if _, err := field(m, "keys", &refs); err != nil {
		return nil, err
	}
	s := settings{m}
	if err := s.strs("key_aliases", &aliases); err != nil {
		return nil, err
	}
	var team, user string
	_, scoped := m["team_id"]
	if _, ok := m["user_id"]; ok {
		scoped = true
	}
	if err := errors.Join(s.str("team_id", &team), s.str("user_id", &user)); err != nil {
		return nil, err
	}
	if len(refs)+len(aliases) == 0 {
		return nil, badRequest("give \"keys\" or \"key_aliases\"")
	}
	if len(refs) > maxListLen {
		return nil, badRequest("keys has %d entries; at most %d", len(refs), maxListLen)
	}
	for _, a := range aliases {
		if strings.TrimSpace(a) == "" {
			return nil, badRequest("key_aliases holds an empty alias, which would name every key without an alias; name keys by \"keys\" instead")
		}
	}
	var hashes []vkey.Hash
	for _, ref := range refs {
		hash, err := parseKeyRef(ref)
		if err != nil {
			return nil, err
		}
		if _, err := h.store.GetKey(ctx, hash); err != nil {
			return nil, err
		}
		hashes = append(hashes, hash)
	}
	if len(aliases) > 0 {
		all, err := h.store.ListKeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range aliases {
			var found []vkey.Hash
			for _, k := range all {
				if k.Alias == a && (!scoped || k.TeamID == team && k.UserID == user) {
					found = append(found, k.Hash)
				}
			}
			switch {
			case len(found) == 0:
				return nil, fmt.Errorf("key alias %q: %w", a, keystore.ErrNotFound)
			case len(found) > 1:
				return nil, badRequest("key alias %q names %d keys of different owners; add their team_id and user_id, or delete by \"keys\"", a, len(found))
			}
			hashes = append(hashes, found[0])
		}
	}
	deleted := make([]string, 0, len(hashes))
	for _, hash := range hashes {
		if err := h.store.DeleteKey(ctx, hash); err != nil && !keystore.IsNotFound(err) {
			return nil, err
		}
		deleted = append(deleted, hash.String())
	}
	return map[string]any{"deleted_keys": deleted}, nil
}

// keyInfo: GET ?key=<hash> (a key itself never travels in a URL, see
// noKeyInQuery), or POST {"key": "sk-weir-..."} or {"token": <hash>}.
func (h *Handler) keyInfo(ctx context.Context, r *http.Request) (any, error) {
	var k *keystore.KeyRecord
	if r.Method == http.MethodPost {
		m, err := decode(r, keyRefFields)
		if err != nil {
			return nil, err
		}
		if k, err = h.keyFromBody(ctx, m); err != nil {
			return nil, err
		}
	} else {
		ref := r.URL.Query().Get("key")
		if ref == "" {
			return nil, badRequest("missing ?key=<hash>, or POST {\"key\": ...}")
		}
		hash, err := parseKeyRef(ref)
		if err != nil {
			return nil, err
		}
		if k, err = h.store.GetKey(ctx, hash); err != nil {
			return nil, err
		}
	}
	info, err := h.keyOut(ctx, k)
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": k.Hash.String(), "info": info}, nil
}

func (h *Handler) keyList(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	page, size := 1, 10
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"page", &page, math.MaxInt32}, {"size", &size, 1000}} {
		if s := q.Get(p.name); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 || v > p.max {
				return nil, badRequest("%s must be an integer between 1 and %d", p.name, p.max)
			}
			*p.dst = v
		}
	}
	all, err := h.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var sel []*keystore.KeyRecord
	for _, k := range all {
		if (q.Get("user_id") == "" || k.UserID == q.Get("user_id")) &&
			(q.Get("team_id") == "" || k.TeamID == q.Get("team_id")) &&
			(q.Get("key_alias") == "" || k.Alias == q.Get("key_alias")) {
			sel = append(sel, k)
		}
	}
	total := len(sel)
	from := min((page-1)*size, total)
	to := min(from+size, total)
	full := q.Get("return_full_object") == "true"
	keys := make([]any, 0, to-from)
	for _, k := range sel[from:to] {
		if full {
			o, err := h.keyOut(ctx, k)
			if err != nil {
				return nil, err
			}
			keys = append(keys, o)
		} else {
			keys = append(keys, k.Hash.String())
		}
	}
	return map[string]any{
		"keys": keys, "total_count": total, "current_page": page,
		"total_pages": (total + size - 1) / size,
	}, nil
}

// newID returns a random id for a team or user created without one.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// applyTeam applies a /team/new or /team/update request's settings to a
// team; fields absent from the request are left alone. The team_id is
// read by the caller.
func applyTeam(m map[string]json.RawMessage, t *keystore.Team) error {
	s := settings{m}
	for _, err := range []error{
		s.str("team_alias", &t.TeamAlias), s.str("organization_id", &t.OrgID),
		s.strs("models", &t.Models), s.metadata(&t.Metadata), s.boolean("blocked", &t.Blocked),
		s.limits(&t.Limits), s.modelLimits(&t.ModelLimits),
	} {
		if err != nil {
			return err
		}
	}
	return checkBudgets(t.Limits, t.ModelLimits)
}

// idFrom reads a required id field (team_id, user_id) of an update.
func idFrom(m map[string]json.RawMessage, name string) (string, error) {
	var id string
	if ok, err := field(m, name, &id); err != nil {
		return "", err
	} else if !ok || id == "" {
		return "", badRequest("missing %q", name)
	}
	return id, validName(name, id)
}

func (h *Handler) teamNew(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, teamNewFields)
	if err != nil {
		return nil, err
	}
	t := &keystore.Team{CreatedAt: h.now()}
	if err := (settings{m}).str("team_id", &t.TeamID); err != nil {
		return nil, err
	}
	if err := applyTeam(m, t); err != nil {
		return nil, err
	}
	if t.TeamID == "" {
		t.TeamID = newID()
	}
	if err := h.store.PutTeam(ctx, t, true); err != nil {
		return nil, err
	}
	return t, nil
}

// teamUpdate takes /team/new's fields; those absent are left alone. It
// answers as LiteLLM does: {"team_id": ..., "data": team}.
func (h *Handler) teamUpdate(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, teamUpdateFields)
	if err != nil {
		return nil, err
	}
	id, err := idFrom(m, "team_id")
	if err != nil {
		return nil, err
	}
	want, err := revisionFrom(m)
	if err != nil {
		return nil, err
	}
	var t *keystore.Team
	err = update(want, func() error {
		if t, err = h.store.GetTeam(ctx, id); err != nil {
			return err
		}
		if want != 0 && t.Revision != want {
			return stale(t.Revision, want)
		}
		if err := applyTeam(m, t); err != nil {
			return err
		}
		return h.store.PutTeam(ctx, t, false)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"team_id": t.TeamID, "data": t}, nil
}

// teamBlock serves /team/block and /team/unblock: {"team_id": ...}; the
// answer is the team, as in LiteLLM. A blocked team's keys get 403.
func (h *Handler) teamBlock(block bool) func(context.Context, *http.Request) (any, error) {
	return func(ctx context.Context, r *http.Request) (any, error) {
		m, err := decode(r, teamRefFields)
		if err != nil {
			return nil, err
		}
		id, err := idFrom(m, "team_id")
		if err != nil {
			return nil, err
		}
		var t *keystore.Team
		err = update(0, func() error {
			if t, err = h.store.GetTeam(ctx, id); err != nil {
				return err
			}
			t.Blocked = block
			return h.store.PutTeam(ctx, t, false)
		})
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

func (h *Handler) teamInfo(ctx context.Context, r *http.Request) (any, error) {
	id := r.URL.Query().Get("team_id")
	if id == "" {
		return nil, badRequest("missing ?team_id=")
	}
	t, err := h.store.GetTeam(ctx, id)
	if err != nil {
		return nil, err
	}
	all, err := h.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := []*keyOut{}
	for _, k := range all {
		if k.TeamID == id {
			o, err := h.keyOut(ctx, k)
			if err != nil {
				return nil, err
			}
			keys = append(keys, o)
		}
	}
	sp, err := h.spend.Total(ctx, book.ScopeTeam, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"team_id": id, "team_info": struct {
		*keystore.Team
		Spend float64 `json:"spend"`
	}{t, budget.USD(sp)}, "keys": keys}, nil
}

func (h *Handler) userNew(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, userNewFields)
	if err != nil {
		return nil, err
	}
	u := &keystore.User{CreatedAt: h.now()}
	s := settings{m}
	autoKey := true
	if err := s.str("user_id", &u.UserID); err != nil {
		return nil, err
	}
	if err := s.boolean("auto_create_key", &autoKey); err != nil {
		return nil, err
	}
	if err := h.applyUser(ctx, m, u); err != nil {
		return nil, err
	}
	if u.UserID == "" {
		u.UserID = newID()
	}
	if err := h.store.PutUser(ctx, u, true); err != nil {
		return nil, err
	}
	out := struct {
		*keystore.User
		Key     string     `json:"key,omitempty"`
		Token   string     `json:"token,omitempty"`
		Expires *time.Time `json:"expires,omitempty"`
	}{User: u}
	if autoKey {
		// LiteLLM's /user/new also issues a key for the user.
		sec, err := vkey.Generate()
		if err != nil {
			return nil, err
		}
		now := h.now()
		k := &keystore.KeyRecord{Key: vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix(), UserID: u.UserID, Models: u.Models},
			CreatedAt: now, UpdatedAt: now}
		if len(u.Teams) == 1 {
			k.TeamID = u.Teams[0]
		}
		if ok, err := field(m, "duration", new(string)); err != nil {
			return nil, err
		} else if ok {
			if err := h.applyKey(ctx, map[string]json.RawMessage{"duration": m["duration"]}, k); err != nil {
				return nil, err
			}
		}
		if err := h.store.PutKey(ctx, k, true); err != nil {
			return nil, err
		}
		out.Key, out.Token, out.Expires = sec.Reveal(), k.Hash.String(), k.ExpiresAt
	}
	return out, nil
}

// applyUser applies a /user/new or /user/update request's settings to a
// user; fields absent from the request are left alone. The user_id is
// read by the caller.
func (h *Handler) applyUser(ctx context.Context, m map[string]json.RawMessage, u *keystore.User) error {
	s := settings{m}
	for _, err := range []error{
		s.str("user_email", &u.UserEmail), s.str("user_role", &u.UserRole),
		s.strs("teams", &u.Teams), s.strs("models", &u.Models), s.metadata(&u.Metadata),
		s.limits(&u.Limits), s.modelLimits(&u.ModelLimits),
	} {
		if err != nil {
			return err
		}
	}
	if err := checkBudgets(u.Limits, u.ModelLimits); err != nil {
		return err
	}
	if _, ok := m["teams"]; ok {
		for _, t := range u.Teams {
			if _, err := h.store.GetTeam(ctx, t); keystore.IsNotFound(err) {
				return badRequest("team %q does not exist", t)
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// userUpdate takes /user/new's fields (no key is issued); those absent are
// left alone. It answers as LiteLLM does: {"user_id": ..., "data": user}.
// A user's models restrict every key of the user.
func (h *Handler) userUpdate(ctx context.Context, r *http.Request) (any, error) {
	m, err := decode(r, userUpdateFields)
	if err != nil {
		return nil, err
	}
	id, err := idFrom(m, "user_id")
	if err != nil {
		return nil, err
	}
	want, err := revisionFrom(m)
	if err != nil {
		return nil, err
	}
	var u *keystore.User
	err = update(want, func() error {
		if u, err = h.store.GetUser(ctx, id); err != nil {
			return err
		}
		if want != 0 && u.Revision != want {
			return stale(u.Revision, want)
		}
		if err := h.applyUser(ctx, m, u); err != nil {
			return err
		}
		return h.store.PutUser(ctx, u, false)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"user_id": u.UserID, "data": u}, nil
}

// logOut is a spend record with LiteLLM's /spend/logs names.
type logOut struct {
	RequestID        string    `json:"request_id"`
	APIKey           string    `json:"api_key"` // the key's hash prefix
	Spend            float64   `json:"spend"`
	TotalTokens      int64     `json:"total_tokens"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	StartTime        time.Time `json:"startTime"`
	EndTime          time.Time `json:"endTime"`
	Model            string    `json:"model"`
	Backend          string    `json:"api_base,omitempty"`
	User             string    `json:"user"`
	TeamID           string    `json:"team_id"`
	OrgID            string    `json:"organization_id,omitempty"`
	Status           int       `json:"status"`
	CostMicroUSD     int64     `json:"cost_micro_usd"`
	// Partial: a stream settled from what was delivered (spend.Record).
	Partial bool `json:"partial"`
}

func (h *Handler) spendLogs(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := book.LogFilter{TeamID: q.Get("team_id"), UserID: q.Get("user_id"), RequestID: q.Get("request_id"), Model: q.Get("model")}
	if k := q.Get("api_key"); k != "" { // a key itself is refused by noKeyInQuery
		if len(k) == 64 {
			hash, err := parseKeyRef(k)
			if err != nil {
				return nil, err
			}
			f.KeyPrefix = hash.Short()
		} else {
			f.KeyPrefix = k // a hash prefix, as the logs show it
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
		end  bool
	}{{"start_date", &f.Start, false}, {"end_date", &f.End, true}} {
		if s := q.Get(p.name); s != "" {
			t, err := parseDate(s)
			if err != nil {
				return nil, badRequest("%s: %v", p.name, err)
			}
			if p.end && len(s) == len(time.DateOnly) {
				t = t.AddDate(0, 0, 1) // an end date includes its day
			}
			*p.dst = t
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, badRequest("limit must be a positive integer")
		}
		f.Limit = n
	}
	recs, err := h.spend.Logs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]logOut, 0, len(recs))
	for _, rec := range recs {
		out = append(out, toLog(rec))
	}
	return out, nil
}

func toLog(r spend.Record) logOut {
	return logOut{
		RequestID: r.RequestID, APIKey: r.KeyPrefix, Spend: budget.USD(r.CostMicroUSD),
		TotalTokens: r.PromptTokens + r.CompletionTokens, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		StartTime: r.Time.Add(-time.Duration(r.LatencyMs) * time.Millisecond), EndTime: r.Time,
		Model: r.Model, Backend: r.Backend, User: r.UserID, TeamID: r.TeamID, OrgID: r.OrgID,
		Status: r.Status, CostMicroUSD: r.CostMicroUSD, Partial: r.Partial,
	}
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

func (h *Handler) globalSpend(ctx context.Context, _ *http.Request) (any, error) {
	sp, err := h.spend.Total(ctx, book.ScopeGlobal, "")
	if err != nil {
		return nil, err
	}
	return map[string]any{"spend": budget.USD(sp), "max_budget": h.GlobalMaxBudget}, nil
}
