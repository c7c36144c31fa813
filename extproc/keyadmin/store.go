package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/vkey"
)

// Store sentinels; each wraps the errs sentinel that gives its status.
var (
	ErrNotFound = fmt.Errorf("%w", errs.ErrNotFound)
	ErrExists   = fmt.Errorf("%w: already exists", errs.ErrInvalidRequest)
)

// KeyRecord is a stored virtual key: the key's rules (vkey.Key, which
// holds only its hash) and bookkeeping.
type KeyRecord struct {
	vkey.Key
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Team is a team, with LiteLLM's field names.
type Team struct {
	TeamID    string            `json:"team_id"`
	TeamAlias string            `json:"team_alias,omitempty"`
	OrgID     string            `json:"organization_id,omitempty"`
	Models    []string          `json:"models,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Blocked   bool              `json:"blocked,omitempty"`
	limits.Limits
	ModelLimits map[string]limits.Limits `json:"model_limits,omitempty"`
	CreatedAt   time.Time                `json:"created_at"`
}

// User is a user, with LiteLLM's field names.
type User struct {
	UserID    string            `json:"user_id"`
	UserEmail string            `json:"user_email,omitempty"`
	UserRole  string            `json:"user_role,omitempty"`
	Teams     []string          `json:"teams,omitempty"`
	Models    []string          `json:"models,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	limits.Limits
	ModelLimits map[string]limits.Limits `json:"model_limits,omitempty"`
	CreatedAt   time.Time                `json:"created_at"`
}

// KeyStore holds keys, teams and users, shared by every replica that
// uses the same backing store. Every change bumps a version and is
// announced on [KeyStore.Changes], which is what keeps each replica's
// keyring current ([Syncer]).
//
// Put with create set fails with [ErrExists] when the id is taken;
// without it, it replaces. Get and Delete fail with [ErrNotFound].
type KeyStore interface {
	PutKey(ctx context.Context, k *KeyRecord, create bool) error
	GetKey(ctx context.Context, h vkey.Hash) (*KeyRecord, error)
	DeleteKey(ctx context.Context, h vkey.Hash) error
	ListKeys(ctx context.Context) ([]*KeyRecord, error)

	PutTeam(ctx context.Context, t *Team, create bool) error
	GetTeam(ctx context.Context, id string) (*Team, error)
	ListTeams(ctx context.Context) ([]*Team, error)

	PutUser(ctx context.Context, u *User, create bool) error
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)

	// Version increases with every change.
	Version(ctx context.Context) (int64, error)
	// Changes returns a channel that receives (coalesced) after every
	// change, from this replica or another, until ctx ends. A receiver
	// that was slow gets one signal for several changes; it then reads
	// [KeyStore.Version].
	Changes(ctx context.Context) <-chan struct{}
}

// Memory is a KeyStore for one replica. Its zero value is ready.
type Memory struct {
	mu      sync.Mutex
	keys    map[vkey.Hash]*KeyRecord
	teams   map[string]*Team
	users   map[string]*User
	version int64
	subs    map[chan struct{}]struct{}
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{} }

func (m *Memory) init() {
	if m.keys == nil {
		m.keys = map[vkey.Hash]*KeyRecord{}
		m.teams = map[string]*Team{}
		m.users = map[string]*User{}
		m.subs = map[chan struct{}]struct{}{}
	}
}

// changed bumps the version and signals subscribers; m.mu is held.
func (m *Memory) changed() {
	m.version++
	for c := range m.subs {
		select {
		case c <- struct{}{}:
		default: // a signal is pending already
		}
	}
}

// Records are copied in and out, deeply, so callers never share a stored
// record or its slices and maps: an update that decodes into a record it
// got from the store and then fails validation must not have changed the
// stored one (nor race with a replica's sync reading it).
type record interface{ *KeyRecord | *Team | *User }

func clone[T record](v T) T {
	switch r := any(v).(type) {
	case *KeyRecord:
		c := *r
		c.Models, c.Tags = slices.Clone(r.Models), slices.Clone(r.Tags)
		c.Aliases, c.Metadata, c.ModelLimits = maps.Clone(r.Aliases), maps.Clone(r.Metadata), maps.Clone(r.ModelLimits)
		if r.ExpiresAt != nil {
			t := *r.ExpiresAt
			c.ExpiresAt = &t
		}
		return any(&c).(T)
	case *Team:
		c := *r
		c.Models, c.Metadata, c.ModelLimits = slices.Clone(r.Models), maps.Clone(r.Metadata), maps.Clone(r.ModelLimits)
		return any(&c).(T)
	case *User:
		c := *r
		c.Teams, c.Models = slices.Clone(r.Teams), slices.Clone(r.Models)
		c.Metadata, c.ModelLimits = maps.Clone(r.Metadata), maps.Clone(r.ModelLimits)
		return any(&c).(T)
	}
	panic("unreachable")
}

func (m *Memory) PutKey(_ context.Context, k *KeyRecord, create bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.keys[k.Hash]; ok && create {
		return fmt.Errorf("key %s: %w", k.Hash.Short(), ErrExists)
	}
	m.keys[k.Hash] = clone(k)
	m.changed()
	return nil
}

func (m *Memory) GetKey(_ context.Context, h vkey.Hash) (*KeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[h]
	if !ok {
		return nil, fmt.Errorf("key: %w", ErrNotFound)
	}
	return clone(k), nil
}

func (m *Memory) DeleteKey(_ context.Context, h vkey.Hash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[h]; !ok {
		return fmt.Errorf("key: %w", ErrNotFound)
	}
	delete(m.keys, h)
	m.changed()
	return nil
}

func (m *Memory) ListKeys(context.Context) ([]*KeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*KeyRecord, 0, len(m.keys))
	for _, k := range m.keys {
		out = append(out, clone(k))
	}
	sortKeys(out)
	return out, nil
}

func (m *Memory) PutTeam(_ context.Context, t *Team, create bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.teams[t.TeamID]; ok && create {
		return fmt.Errorf("team %q: %w", t.TeamID, ErrExists)
	}
	m.teams[t.TeamID] = clone(t)
	m.changed()
	return nil
}

func (m *Memory) GetTeam(_ context.Context, id string) (*Team, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.teams[id]
	if !ok {
		return nil, fmt.Errorf("team %q: %w", id, ErrNotFound)
	}
	return clone(t), nil
}

func (m *Memory) ListTeams(context.Context) ([]*Team, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Team, 0, len(m.teams))
	for _, t := range m.teams {
		out = append(out, clone(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TeamID < out[j].TeamID })
	return out, nil
}

func (m *Memory) PutUser(_ context.Context, u *User, create bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.users[u.UserID]; ok && create {
		return fmt.Errorf("user %q: %w", u.UserID, ErrExists)
	}
	m.users[u.UserID] = clone(u)
	m.changed()
	return nil
}

func (m *Memory) GetUser(_ context.Context, id string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return nil, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	return clone(u), nil
}

func (m *Memory) ListUsers(context.Context) ([]*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*User, 0, len(m.users))
	for _, u := range m.users {
		out = append(out, clone(u))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out, nil
}

func (m *Memory) Version(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

func (m *Memory) Changes(ctx context.Context) <-chan struct{} {
	c := make(chan struct{}, 1)
	m.mu.Lock()
	m.init()
	m.subs[c] = struct{}{}
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		delete(m.subs, c)
		m.mu.Unlock()
	})
	return c
}

// sortKeys orders keys by creation, then hash: a stable listing.
func sortKeys(ks []*KeyRecord) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].CreatedAt.Equal(ks[j].CreatedAt) {
			return ks[i].CreatedAt.Before(ks[j].CreatedAt)
		}
		return ks[i].Hash.String() < ks[j].Hash.String()
	})
}

// IsNotFound reports whether err is a store's not-found.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
