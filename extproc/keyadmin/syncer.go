package keyadmin

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/weir-ai/weir/extproc/vkey"
)

// Syncer keeps a [vkey.Keyring] equal to a store's keys (plus keys
// declared in the config, by hash). It reloads when the store announces a
// change, and also polls the store's version, which catches announcements
// lost while a replica was disconnected. With the default poll of 500 ms a
// change reaches every replica within 1 s even without announcements.
type Syncer struct {
	Store  KeyStore
	Ring   *vkey.Keyring
	Static []*vkey.Key // from the config; a stored key with the same hash wins
	// Poll is the version polling interval (default 500 ms). Tick, when
	// set, replaces the timer: tests drive it by hand.
	Poll time.Duration
	Tick <-chan time.Time
	// OnSync is called after each reload with the version loaded and the
	// number of keys. Tests synchronise on it.
	OnSync func(version int64, keys int)
	// OnSubjects, if set, receives the stored teams and users after each
	// reload, so their budgets and limits apply to their keys.
	OnSubjects func(teams []*Team, users []*User)
	Log        *slog.Logger

	mu      sync.Mutex
	version int64
	loaded  bool
}

// Sync reloads the keyring if the store's version changed since the last
// load (or nothing was loaded yet), and reports whether it did.
func (s *Syncer) Sync(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.Store.Version(ctx)
	if err != nil {
		return false, err
	}
	if s.loaded && v == s.version {
		return false, nil
	}
	recs, err := s.Store.ListKeys(ctx)
	if err != nil {
		return false, err
	}
	keys := make([]*vkey.Key, 0, len(s.Static)+len(recs))
	keys = append(keys, s.Static...)
	for _, r := range recs {
		keys = append(keys, &r.Key) // later entries win in Replace
	}
	if s.OnSubjects != nil {
		teams, err := s.Store.ListTeams(ctx)
		if err != nil {
			return false, err
		}
		users, err := s.Store.ListUsers(ctx)
		if err != nil {
			return false, err
		}
		s.OnSubjects(teams, users)
	}
	s.Ring.Replace(keys)
	// A change between Version and ListKeys is in the list already and
	// bumps the version again: the next Sync reloads once more, harmlessly.
	s.version, s.loaded = v, true
	if s.OnSync != nil {
		s.OnSync(v, s.Ring.Len())
	}
	return true, nil
}

// Run syncs until ctx ends. It returns the first Sync's error, so a
// replica that cannot load its keys at start fails loudly; later errors
// are logged and retried.
func (s *Syncer) Run(ctx context.Context) error {
	changes := s.Store.Changes(ctx)
	if _, err := s.Sync(ctx); err != nil {
		return err
	}
	tick := s.Tick
	if tick == nil {
		p := s.Poll
		if p <= 0 {
			p = 500 * time.Millisecond
		}
		t := time.NewTicker(p)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes:
		case <-tick:
		}
		if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("keyadmin: key sync failed; keeping the previous keys", "err", err)
		}
	}
}

func (s *Syncer) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
