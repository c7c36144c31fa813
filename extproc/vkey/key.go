package vkey

import (
	"fmt"
	"strings"
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

// Keyring looks keys up by hash. It is an immutable snapshot swapped
// atomically, so lookups take no lock; the admin API or a config reload
// builds a new one and calls [Keyring.Replace].
type Keyring struct {
	m atomic.Pointer[map[Hash]*Key]
}

// NewKeyring returns a keyring holding keys.
func NewKeyring(keys ...*Key) *Keyring {
	r := &Keyring{}
	r.Replace(keys)
	return r
}

// Replace swaps the keyring's contents.
func (r *Keyring) Replace(keys []*Key) {
	m := make(map[Hash]*Key, len(keys))
	for _, k := range keys {
		m[k.Hash] = k
	}
	r.m.Store(&m)
}

// Len is the number of keys.
func (r *Keyring) Len() int { return len(*r.m.Load()) }

// Authenticate finds the key for a presented secret.
func (r *Keyring) Authenticate(s Secret) (*Key, error) {
	h := s.Hash()
	k, ok := (*r.m.Load())[h]
	// The map finds the candidate by hash; the constant-time comparison is
	// what accepts it, so acceptance never depends on a short-circuiting
	// compare of attacker-chosen bytes.
	if !ok || !k.Hash.Equal(h) {
		return nil, ErrUnknown
	}
	return k, nil
}
