package vkey

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-ai/weir/extproc/limits"
)

// Key is a virtual key's record. Field names follow LiteLLM's
// /key/generate where the meaning is the same, so migrating users keep
// their scripts.
type Key struct {
	Hash   Hash   `json:"token"` // LiteLLM calls the stored hash "token"
	Prefix string `json:"key_name,omitempty"`
	Alias  string `json:"key_alias,omitempty"`
	// LimitsID, when set, names the key's budget and rate counters instead
	// of its hash, so keys that share it share one budget: a key the
	// controller rotated (a new hash) and its predecessor, during the
	// grace period and after, are one budget, not two.
	LimitsID string `json:"limits_id,omitempty"`

	// Models the key may use: exact names, "provider/*" prefixes, or "*".
	// Empty means every model.
	Models []string `json:"models,omitempty"`
	// Aliases maps a name the client sends to the model it stands for.
	Aliases map[string]string `json:"aliases,omitempty"`

	ExpiresAt *time.Time `json:"expires,omitempty"`
	Blocked   bool       `json:"blocked,omitempty"`

	UserID string `json:"user_id,omitempty"`
	TeamID string `json:"team_id,omitempty"`
	OrgID  string `json:"organization_id,omitempty"`

	Metadata map[string]string `json:"metadata,omitempty"`
	Tags     []string          `json:"tags,omitempty"`

	limits.Limits
	// ModelLimits are per-model budgets and rate limits, by model name
	// after alias resolution.
	ModelLimits map[string]limits.Limits `json:"model_limits,omitempty"`
}

// CounterID is the id of the key's counters: its LimitsID, else the
// short form of its hash.
func (k *Key) CounterID() string {
	if k.LimitsID != "" {
		return k.LimitsID
	}
	return k.Hash.Short()
}

// ResolveModel maps an alias to its model; other names are returned as
// they are.
func (k *Key) ResolveModel(model string) string {
	if m, ok := k.Aliases[model]; ok {
		return m
	}
	return model
}

// Allows reports whether the key may use model (already alias-resolved).
func (k *Key) Allows(model string) bool { return ModelAllowed(k.Models, model) }

// ModelAllowed reports whether a model list (a key's, a team's or a
// user's) admits model: exact names, "provider/*" prefixes, or "*". An
// empty list admits every model.
func ModelAllowed(list []string, model string) bool {
	if len(list) == 0 {
		return true
	}
	for _, p := range list {
		if p == "*" || p == model {
			return true
		}
		// "openai/*" admits "openai/gpt-4o" but not "openai" itself.
		if strings.HasSuffix(p, "/*") && len(model) > len(p)-1 && strings.HasPrefix(model, p[:len(p)-1]) {
			return true
		}
	}
	return false
}

// Check applies the key's own rules to a request for model at now, and
// returns the model after alias resolution. Rules are checked in a fixed
// order (blocked, expired, model) so that the error names the first that
// refuses.
func (k *Key) Check(model string, now time.Time) (string, error) {
	if err := k.CheckState(now); err != nil {
		return "", err
	}
	m := k.ResolveModel(model)
	if !k.Allows(m) {
		return "", fmt.Errorf("%w %q", ErrModelNotAllowed, m)
	}
	return m, nil
}

// CheckState applies the key's own rules that do not depend on a model
// (blocked, then expired) at now.
func (k *Key) CheckState(now time.Time) error {
	if k.Blocked {
		return ErrBlocked
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return fmt.Errorf("%w (expired at %s)", ErrExpired, k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// Keyring looks keys up by hash. Lookups take no lock: the keys are held
// in shards, each an immutable map swapped atomically. A change copies
// only the shards it touches ([Keyring.Apply]), so adding one key to a
// keyring of 100,000 copies about 400 entries, not 100,000.
type Keyring struct {
	shards [ringShards]atomic.Pointer[map[Hash]*Key]
	n      atomic.Int64
	mu     sync.Mutex // serialises writers; readers never take it
}

// ringShards: 256, picked by a hash's first byte, which SHA-256 spreads
// evenly.
const ringShards = 256

// NewKeyring returns a keyring holding keys.
func NewKeyring(keys ...*Key) *Keyring {
	r := &Keyring{}
	r.Replace(keys)
	return r
}

// Replace swaps the keyring's contents; later keys win over earlier ones
// with the same hash. A concurrent lookup sees, for each key, either its
// old or its new state.
func (r *Keyring) Replace(keys []*Key) {
	var ms [ringShards]map[Hash]*Key
	for i := range ms {
		ms[i] = make(map[Hash]*Key, len(keys)/ringShards+1)
	}
	for _, k := range keys {
		ms[k.Hash[0]][k.Hash] = k
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for i := range ms {
		r.shards[i].Store(&ms[i])
		n += int64(len(ms[i]))
	}
	r.n.Store(n)
}

// Apply adds or replaces put and removes del (del first, so a hash in both
// ends up put). Only the shards they touch are copied.
func (r *Keyring) Apply(put []*Key, del []Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := map[byte]map[Hash]*Key{}
	shard := func(b byte) map[Hash]*Key {
		if m, ok := changed[b]; ok {
			return m
		}
		var m map[Hash]*Key
		if old := r.shards[b].Load(); old != nil {
			m = maps.Clone(*old)
		}
		if m == nil {
			m = map[Hash]*Key{}
		}
		changed[b] = m
		return m
	}
	for _, h := range del {
		delete(shard(h[0]), h)
	}
	for _, k := range put {
		shard(k.Hash[0])[k.Hash] = k
	}
	n := r.n.Load()
	for b, m := range changed {
		if old := r.shards[b].Load(); old != nil {
			n -= int64(len(*old))
		}
		n += int64(len(m))
		r.shards[b].Store(&m)
	}
	r.n.Store(n)
}

// Len is the number of keys.
func (r *Keyring) Len() int { return int(r.n.Load()) }

// Authenticate finds the key for a presented secret.
func (r *Keyring) Authenticate(s Secret) (*Key, error) {
	h := s.Hash()
	var k *Key
	ok := false
	if m := r.shards[h[0]].Load(); m != nil {
		k, ok = (*m)[h]
	}
	// The map finds the candidate by hash; the constant-time comparison is
	// what accepts it, so acceptance never depends on a short-circuiting
	// compare of attacker-chosen bytes.
	if !ok || !k.Hash.Equal(h) {
		return nil, ErrUnknown
	}
	return k, nil
}
