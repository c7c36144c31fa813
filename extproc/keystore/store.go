// Package keystore holds what the data plane needs of the keys, teams and
// users that the key admin API (controller/keyadmin) manages: the [Store]
// (in memory for one replica, or in Redis shared by replicas) and the
// [Syncer] that mirrors it into each replica's [vkey.Keyring] and hands
// teams and users to admission. The admin API writes the store; replicas
// only read it, so nothing here serves HTTP.
package keystore

import (
	"cmp"
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

// Prefix is the default prefix of the Redis store's keys. Its hash tag is
// the spend book's and the spend stream's, so every script's keys share
// one Redis Cluster slot.
const Prefix = "{weir}:admin:"

// Store sentinels; each wraps the errs sentinel that gives its status.
var (
	ErrNotFound = fmt.Errorf("%w", errs.ErrNotFound)
	ErrExists   = fmt.Errorf("%w: already exists", errs.ErrInvalidRequest)
	// ErrConflict: a compare-and-set write whose record changed since it
	// was read (its Revision differs).
	ErrConflict = fmt.Errorf("%w: the record changed since it was read", errs.ErrConflict)
	// ErrAliasTaken: another key of the same owner has the alias.
	ErrAliasTaken = fmt.Errorf("%w: another key of the same owner (team_id, user_id) has this key_alias", errs.ErrConflict)
)

// KeyRecord is a stored virtual key: the key's rules (vkey.Key, which
// holds only its hash) and bookkeeping.
type KeyRecord struct {
	vkey.Key
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Revision is 1 when the record is created and grows by one with each
	// write: the compare-and-set token of [Store.PutKey].
	Revision int64 `json:"revision"`
}

// aliasIndex is the key under which a key's alias is unique: the owner
// (team_id, user_id) and the alias, NUL-separated (names cannot hold
// control characters, see validName). Empty for a key without an alias.
// The Redis store's scripts build the same string.
func aliasIndex(k *KeyRecord) string {
	if k.Alias == "" {
		return ""
	}
	return k.TeamID + "\x00" + k.UserID + "\x00" + k.Alias
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
	Revision    int64                    `json:"revision"` // as KeyRecord's
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
	Revision    int64                    `json:"revision"` // as KeyRecord's
}

// Store holds keys, teams and users, shared by every replica that
// uses the same backing store. Every change bumps a version and is
// announced on [Store.Changes], which is what keeps each replica's
// keyring current ([Syncer]).
//
// Put with create set fails with [ErrExists] when the id is taken.
// Without it, Put is a compare-and-set: it fails with [ErrNotFound] when
// the record is gone, and with [ErrConflict] when the stored record's
// Revision is not the one passed in (it changed since it was read). A
// successful Put sets the record's Revision to the stored one. PutKey also
// fails with [ErrAliasTaken] when another key of the same owner (team_id,
// user_id) has the key's alias. Get and Delete fail with [ErrNotFound].
type Store interface {
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
	// [Store.Version].
	Changes(ctx context.Context) <-chan struct{}
	// Since returns what changed after version since: what a replica that
	// loaded version since must apply to catch up ([Syncer]).
	Since(ctx context.Context, since int64) (*Delta, error)
}

// Delta is what changed in a store after a version.
type Delta struct {
	// Version is the store's version the delta brings a reader to.
	Version int64
	// Full: the store no longer remembers changes that far back (or its
	// version went backwards, as after a Redis flush): reload everything.
	Full bool
	// Keys written after the version, as they are now, and keys deleted.
	Keys    []*KeyRecord
	Deleted []vkey.Hash
	// Subjects: a team or user changed; reread them.
	Subjects bool
}

// defaultFeedLen is how many changes a store remembers for [Store.Since]
// (the Redis store: how many distinct records). A replica further behind
// reloads everything. 100,000 entries are a few MiB, and a replica is
// normally within a second of the head.
const defaultFeedLen = 100_000

// Memory is a [Store] for one replica. Its zero value is ready.
type Memory struct {
	// FeedLen bounds the change feed (default 100,000 changes).
	FeedLen int

	mu      sync.Mutex
	keys    map[vkey.Hash]*KeyRecord
	aliases map[string]vkey.Hash // aliasIndex → key
	teams   map[string]*Team
	users   map[string]*User
	version int64
	subs    map[chan struct{}]struct{}
	// feed lists changes in version order; floor is the version of the
	// newest change dropped from it.
	feed  []change
	floor int64
}

// change is one entry of Memory's feed: a key (by hash) or a team or user.
type change struct {
	version int64
	subject bool
	key     vkey.Hash
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{} }

func (m *Memory) init() {
	if m.keys == nil {
		m.keys = map[vkey.Hash]*KeyRecord{}
		m.aliases = map[string]vkey.Hash{}
		m.teams = map[string]*Team{}
		m.users = map[string]*User{}
		m.subs = map[chan struct{}]struct{}{}
	}
}

// changed bumps the version, records the change in the feed and signals
// subscribers; m.mu is held. A key's change names its hash; a team's or
// user's is a subject change.
func (m *Memory) changed(key *vkey.Hash) {
	m.version++
	c := change{version: m.version, subject: key == nil}
	if key != nil {
		c.key = *key
	}
	m.feed = append(m.feed, c)
	if n := cmp.Or(m.FeedLen, defaultFeedLen); len(m.feed) > n {
		// Drop the older half at once, so trimming is amortised O(1).
		drop := len(m.feed) - n/2
		m.floor = m.feed[drop-1].version
		m.feed = slices.Clone(m.feed[drop:])
	}
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

// checkRevision is Put's precondition: create wants no record, an
// update the record at revision want.
func checkRevision(what string, exists bool, cur int64, create bool, want int64) error {
	switch {
	case create && exists:
		return fmt.Errorf("%s: %w", what, ErrExists)
	case !create && !exists:
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case !create && cur != want:
		return fmt.Errorf("%s (revision %d, not %d): %w", what, cur, want, ErrConflict)
	}
	return nil
}

func (m *Memory) PutKey(_ context.Context, k *KeyRecord, create bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	old, ok := m.keys[k.Hash]
	var cur int64
	if ok {
		cur = old.Revision
	}
	if err := checkRevision("key "+k.Hash.Short(), ok, cur, create, k.Revision); err != nil {
		return err
	}
	idx := aliasIndex(k)
	if h, taken := m.aliases[idx]; idx != "" && taken && h != k.Hash {
		return fmt.Errorf("%w: %q", ErrAliasTaken, k.Alias)
	}
	if ok {
		if o := aliasIndex(old); o != "" && m.aliases[o] == k.Hash {
			delete(m.aliases, o)
		}
	}
	if idx != "" {
		m.aliases[idx] = k.Hash
	}
	k.Revision = cur + 1
	m.keys[k.Hash] = clone(k)
	m.changed(&k.Hash)
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
	old, ok := m.keys[h]
	if !ok {
		return fmt.Errorf("key: %w", ErrNotFound)
	}
	if o := aliasIndex(old); o != "" && m.aliases[o] == h {
		delete(m.aliases, o)
	}
	delete(m.keys, h)
	m.changed(&h)
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
	old, ok := m.teams[t.TeamID]
	var cur int64
	if ok {
		cur = old.Revision
	}
	if err := checkRevision(fmt.Sprintf("team %q", t.TeamID), ok, cur, create, t.Revision); err != nil {
		return err
	}
	t.Revision = cur + 1
	m.teams[t.TeamID] = clone(t)
	m.changed(nil)
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
	old, ok := m.users[u.UserID]
	var cur int64
	if ok {
		cur = old.Revision
	}
	if err := checkRevision(fmt.Sprintf("user %q", u.UserID), ok, cur, create, u.Revision); err != nil {
		return err
	}
	u.Revision = cur + 1
	m.users[u.UserID] = clone(u)
	m.changed(nil)
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

func (m *Memory) Since(_ context.Context, since int64) (*Delta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &Delta{Version: m.version}
	if since < m.floor || since > m.version {
		d.Full = true
		return d, nil
	}
	i := sort.Search(len(m.feed), func(i int) bool { return m.feed[i].version > since })
	seen := map[vkey.Hash]bool{}
	for _, c := range m.feed[i:] {
		if c.subject {
			d.Subjects = true
			continue
		}
		if seen[c.key] {
			continue
		}
		seen[c.key] = true
		if k, ok := m.keys[c.key]; ok {
			d.Keys = append(d.Keys, clone(k))
		} else {
			d.Deleted = append(d.Deleted, c.key)
		}
	}
	return d, nil
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
