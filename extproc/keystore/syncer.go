package keystore

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/vkey"
)

// Syncer keeps a [vkey.Keyring] equal to a store's keys (plus keys
// declared in the config, by hash). It applies the store's changes when
// the store announces one, and also polls, which catches announcements
// lost while a replica was disconnected. With the default poll of 500 ms a
// change reaches every replica within 1 s even without announcements.
type Syncer struct {
	Store  Store
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
	// MinBackoff and MaxBackoff bound the wait between tries while the
	// store fails: it doubles from MinBackoff (default 200 ms) up to
	// MaxBackoff (default 5 s), so keys return within MaxBackoff of the
	// store. After, when set, replaces the timer: tests fire it by hand.
	MinBackoff, MaxBackoff time.Duration
	After                  func(time.Duration) <-chan time.Time

	// FullEvery is how often a full reload runs anyway, as a safety net
	// for changes made behind the store's back (default 10 minutes;
	// negative: never). Clock is the time it is measured with.
	FullEvery time.Duration
	Clock     budget.Clock

	mu      sync.Mutex
	version int64
	loaded  bool

	// Under mu: when the last full reload ran, and Static by hash.
	lastFull time.Time
	static   map[vkey.Hash]*vkey.Key
}

// Sync brings the keyring up to the store's version, and reports whether
// anything changed. The first Sync loads every key; later ones apply only
// the keys changed since ([Store.Since]), so creating a key costs the
// same with 100 keys as with 100,000. It reloads everything when the store
// no longer remembers that far back, and every FullEvery as a safety net.
// Teams and users are reread when one of them changed.
func (s *Syncer) Sync(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	every := cmp.Or(s.FullEvery, 10*time.Minute)
	if !s.loaded {
		return s.full(ctx)
	}
	if now := s.Clock.Now(); every > 0 && now.Sub(s.lastFull) >= every {
		// The next safety-net reload is due in FullEvery even if this one
		// fails: a reload that keeps failing (100,000 keys are a 40 MB
		// HGETALL, which a loaded Redis may time out) must not replace
		// the cheap incremental syncs of the next polls.
		s.lastFull = now
		return s.full(ctx)
	}
	d, err := s.Store.Since(ctx, s.version)
	if err != nil {
		return false, err
	}
	if d.Full {
		return s.full(ctx)
	}
	if d.Version == s.version && len(d.Keys)+len(d.Deleted) == 0 && !d.Subjects {
		return false, nil
	}
	put := make([]*vkey.Key, 0, len(d.Keys)+len(d.Deleted))
	var del []vkey.Hash
	for _, k := range d.Keys {
		put = append(put, &k.Key)
	}
	for _, h := range d.Deleted {
		// A config key with the same hash was shadowed by the stored one.
		if k, ok := s.static[h]; ok {
			put = append(put, k)
		} else {
			del = append(del, h)
		}
	}
	if d.Subjects {
		if err := s.subjects(ctx); err != nil {
			return false, err
		}
	}
	s.Ring.Apply(put, del)
	s.version = d.Version
	if s.OnSync != nil {
		s.OnSync(d.Version, s.Ring.Len())
	}
	return true, nil
}

// full reloads every key, team and user; s.mu is held.
func (s *Syncer) full(ctx context.Context) (bool, error) {
	v, err := s.Store.Version(ctx)
	if err != nil {
		return false, err
	}
	recs, err := s.Store.ListKeys(ctx)
	if err != nil {
		return false, err
	}
	keys := make([]*vkey.Key, 0, len(s.Static)+len(recs))
	keys = append(keys, s.Static...)
	s.static = make(map[vkey.Hash]*vkey.Key, len(s.Static))
	for _, k := range s.Static {
		s.static[k.Hash] = k
	}
	for _, r := range recs {
		keys = append(keys, &r.Key) // later entries win in Replace
	}
	if err := s.subjects(ctx); err != nil {
		return false, err
	}
	s.Ring.Replace(keys)
	// A change between Version and ListKeys is in the list already and
	// comes again in the next Since, harmlessly.
	s.version, s.loaded, s.lastFull = v, true, s.Clock.Now()
	if s.OnSync != nil {
		s.OnSync(v, s.Ring.Len())
	}
	return true, nil
}

// subjects hands the stored teams and users to OnSubjects.
func (s *Syncer) subjects(ctx context.Context) error {
	if s.OnSubjects == nil {
		return nil
	}
	teams, err := s.Store.ListTeams(ctx)
	if err != nil {
		return err
	}
	users, err := s.Store.ListUsers(ctx)
	if err != nil {
		return err
	}
	s.OnSubjects(teams, users)
	return nil
}

// Run syncs until ctx ends, and returns ctx's error. A store that fails,
// at start-up or later, is retried with capped exponential backoff; until
// the first load succeeds (the first OnSync) only the config's keys
// authenticate, afterwards a failure keeps the keys last loaded.
func (s *Syncer) Run(ctx context.Context) error {
	changes := s.Store.Changes(ctx)
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
	var backoff time.Duration // zero while the store answers
	loaded := false
	for {
		if _, err := s.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			backoff = s.backoff(backoff)
			s.logFailure(loaded, backoff, err)
			// Announcements and polls are ignored while backing off: the
			// Redis store announces every reconnect attempt.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.after(backoff):
			}
			continue
		}
		if backoff > 0 {
			s.log().Info("keystore: key sync recovered")
			backoff = 0
		}
		loaded = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes:
		case <-tick:
		}
	}
}

// logFailure logs the first failure of an outage loudly and the retries
// quietly, so an outage costs a few lines, not one per try.
func (s *Syncer) logFailure(loaded bool, backoff time.Duration, err error) {
	level, msg := slog.LevelWarn, "keystore: key sync failed; keeping the keys last loaded"
	if !loaded {
		level, msg = slog.LevelError, "keystore: keys not loaded yet; keys the gateway does not know are answered 503 (retry) until the store answers"
	}
	if backoff > s.minBackoff() {
		level = slog.LevelDebug
	}
	s.log().Log(context.Background(), level, msg, "retry_in", backoff, "err", err)
}

// backoff is the wait after prev: MinBackoff, then doubling, capped.
func (s *Syncer) backoff(prev time.Duration) time.Duration {
	maxB := s.MaxBackoff
	if maxB <= 0 {
		maxB = 5 * time.Second
	}
	return min(max(2*prev, s.minBackoff()), maxB)
}

func (s *Syncer) minBackoff() time.Duration {
	if s.MinBackoff <= 0 {
		return 200 * time.Millisecond
	}
	return s.MinBackoff
}

func (s *Syncer) after(d time.Duration) <-chan time.Time {
	if s.After != nil {
		return s.After(d)
	}
	return time.After(d)
}

func (s *Syncer) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
