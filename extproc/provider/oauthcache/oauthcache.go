// Package oauthcache keeps one OAuth2 access token fresh in the background,
// so that the request path only reads it.
//
// Providers whose credentials are short-lived bearer tokens (Vertex AI with
// a Google service account, Azure OpenAI with Microsoft Entra ID) build one
// [Cache] per backend when the config loads. A goroutine fetches the first
// token at once, then fetches the next one when less than the margin (5
// minutes by default, at most half the token's lifetime) remains, retrying
// failures with backoff (1 s doubling to 1 min) while the old token is still
// good. [Cache.Header] never does I/O: it reads the cached
// "Bearer <token>" with one atomic load. When there is no usable token and
// a fetch is under way (the first one, typically, as a cache starts
// fetching when it is built) it waits for that fetch, up to Options.Wait
// and the caller's context, so that a backend just configured does not
// answer 503 for the moment its first token takes. Otherwise (every fetch
// so far failed, or every refresh failed until the token expired) it
// returns an *errs.CredentialError carrying the last fetch failure: the
// client sees a generic 503 and the server logs the reason.
//
// oauth2.ReuseTokenSource is not used: it refreshes on demand, that is on
// the request path, and reads the wall clock internally. The cache plays
// its part (one token shared by all requests, fetched again only near
// expiry) with the fetch moved off the request path and an injectable
// clock, so that tests prove the refresh timing without sleeping.
//
// Tokens never appear in logs or error messages. A Cache stops its
// goroutine, cancelling a fetch under way, on [Cache.Close] (which
// extproc/provider/credsource calls when no config uses the cache any
// more), or when it becomes unreachable, through runtime.AddCleanup.
package oauthcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/weir-ai/weir/extproc/errs"
)

// Defaults for [Options].
const (
	DefaultMargin   = 5 * time.Minute
	DefaultTimeout  = 30 * time.Second
	DefaultMinRetry = time.Second
	DefaultMaxRetry = time.Minute
	DefaultWait     = 5 * time.Second
	// noExpiryRecheck is when a token that reported no expiry is fetched
	// again anyway.
	noExpiryRecheck = time.Hour
)

// Fetcher fetches a new token from the identity provider, every call (it
// must not cache: the Cache decides when to fetch).
type Fetcher func(ctx context.Context) (*oauth2.Token, error)

// Options configure a Cache. Fetch is required.
type Options struct {
	// Name prefixes log messages ("vertex backend x").
	Name string
	// Backend names the backend in errors; empty means Name.
	Backend string
	// Fetch gets a new token.
	Fetch Fetcher
	// Margin is how long before expiry the token is refreshed; the
	// refresh happens no later than halfway through the token's lifetime.
	Margin time.Duration
	// Timeout bounds one fetch.
	Timeout time.Duration
	// Wait bounds how long [Cache.Header] waits for a fetch under way.
	Wait time.Duration
	// MinRetry and MaxRetry bound the backoff after a failed fetch.
	MinRetry, MaxRetry time.Duration
	// Now and After are the clock; tests replace them. After must return
	// a channel that receives once the duration has passed.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Log receives fetch failures; nil means slog.Default().
	Log *slog.Logger
}

// Cache holds the current token. Its methods are safe for concurrent use.
type Cache struct{ s *state }

type entry struct {
	header  string    // "Bearer <token>"
	fetched time.Time // when the fetch started
	expiry  time.Time // zero: the token reported no expiry
}

// state is what the goroutine uses; it never points back at the Cache, so
// an unreachable Cache can be cleaned up while the goroutine runs.
type state struct {
	name, backend      string
	fetch              Fetcher
	margin, timeout    time.Duration
	wait               time.Duration
	minRetry, maxRetry time.Duration
	now                func() time.Time
	after              func(time.Duration) <-chan time.Time
	log                *slog.Logger
	cur                atomic.Pointer[entry]
	// pending is closed when the fetch under way ends; nil when none is.
	pending atomic.Pointer[chan struct{}]
	// lastErr is the last fetch's failure, nil after a success.
	lastErr  atomic.Pointer[failure]
	failing  atomic.Bool
	fetches  atomic.Int64
	ctx      context.Context // fetches' parent, cancelled by close
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

type failure struct{ err error }

// New starts the cache's goroutine, which fetches the first token at once.
func New(o Options) (*Cache, error) {
	if o.Fetch == nil {
		return nil, errors.New("oauthcache: no fetcher")
	}
	s := &state{
		name: o.Name, backend: o.Backend, fetch: o.Fetch, margin: o.Margin, timeout: o.Timeout, wait: o.Wait,
		minRetry: o.MinRetry, maxRetry: o.MaxRetry, now: o.Now, after: o.After, log: o.Log,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.name == "" {
		s.name = "oauth2"
	}
	if s.backend == "" {
		s.backend = s.name
	}
	if s.wait <= 0 {
		s.wait = DefaultWait
	}
	if s.margin <= 0 {
		s.margin = DefaultMargin
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.minRetry <= 0 {
		s.minRetry = DefaultMinRetry
	}
	if s.maxRetry < s.minRetry {
		s.maxRetry = max(DefaultMaxRetry, s.minRetry)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.after == nil {
		s.after = time.After
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	c := &Cache{s: s}
	// The first fetch is under way from now, so that a request arriving
	// before the goroutine runs waits for it too.
	first := make(chan struct{})
	s.pending.Store(&first)
	go s.run()
	runtime.AddCleanup(c, func(s *state) { s.close() }, s)
	return c, nil
}

// Header returns the Authorization header value, "Bearer <token>". It does
// no I/O. Without a usable token it waits for a fetch under way, if any,
// until it ends, ctx is done or Options.Wait has passed (ctx may be nil).
// The error is an *errs.CredentialError with the reason.
func (c *Cache) Header(ctx context.Context) (string, error) {
	s := c.s
	if h, ok := s.usable(); ok {
		return h, nil
	}
	if ch := s.pending.Load(); ch != nil {
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, s.wait)
		defer cancel()
		select {
		case <-*ch:
			if h, ok := s.usable(); ok {
				return h, nil
			}
		case <-ctx.Done():
			return "", s.fail(fmt.Errorf("gave up waiting for the token fetch under way: %w", ctx.Err()))
		}
	}
	msg := "no OAuth2 access token yet"
	if s.cur.Load() != nil {
		msg = "the OAuth2 access token expired and could not be refreshed"
	}
	if f := s.lastErr.Load(); f != nil {
		return "", s.fail(fmt.Errorf("%s: %w", msg, f.err))
	}
	return "", s.fail(errors.New(msg))
}

// usable returns the cached header if its token has not expired.
func (s *state) usable() (string, bool) {
	e := s.cur.Load()
	if e == nil || (!e.expiry.IsZero() && !s.now().Before(e.expiry)) {
		return "", false
	}
	return e.header, true
}

func (s *state) fail(err error) error {
	return &errs.CredentialError{Backend: s.backend, Err: err}
}

// Expiry returns the current token's expiry (zero if there is no token or
// it reported none).
func (c *Cache) Expiry() time.Time {
	if e := c.s.cur.Load(); e != nil {
		return e.expiry
	}
	return time.Time{}
}

// Fetches counts the fetch attempts so far (for tests and metrics).
func (c *Cache) Fetches() int64 { return c.s.fetches.Load() }

// Close stops the refresh goroutine and waits for it to end. The cached
// token stays readable until it expires.
func (c *Cache) Close() {
	c.s.close()
	<-c.s.done
}

// Done is closed once the refresh goroutine has stopped.
func (c *Cache) Done() <-chan struct{} { return c.s.done }

func (s *state) close() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.cancel()
	})
}

func (s *state) run() {
	defer close(s.done)
	// Whoever waits for a fetch stops waiting when the refresher stops.
	defer s.endFetch()
	backoff := s.minRetry
	for {
		wait, ok := s.step()
		if ok {
			backoff = s.minRetry
		} else {
			wait = backoff
			backoff = min(backoff*2, s.maxRetry)
			// While the old token is still good, retry at least twice
			// before it expires.
			if e := s.cur.Load(); e != nil && !e.expiry.IsZero() {
				if half := e.expiry.Sub(s.now()) / 2; half > 0 && half < wait {
					wait = max(half, s.minRetry)
				}
			}
		}
		select {
		case <-s.stop:
			return
		case <-s.after(wait):
		}
	}
}

// endFetch wakes the requests waiting for the fetch under way.
func (s *state) endFetch() {
	if ch := s.pending.Swap(nil); ch != nil {
		close(*ch)
	}
}

// refreshAt is when a token fetched at fetched and expiring at expiry is
// refreshed: margin before expiry, but no later than halfway.
func (s *state) refreshAt(fetched, expiry time.Time) time.Time {
	if expiry.IsZero() {
		return fetched.Add(noExpiryRecheck)
	}
	m := s.margin
	if half := expiry.Sub(fetched) / 2; half < m {
		m = max(half, 0)
	}
	return expiry.Add(-m)
}

// step fetches a token if the current one is due for refresh, and returns
// how long to wait before the next step; ok is false after a failed fetch.
func (s *state) step() (wait time.Duration, ok bool) {
	select {
	case <-s.stop:
		return 0, true
	default:
	}
	now := s.now()
	if e := s.cur.Load(); e != nil {
		if at := s.refreshAt(e.fetched, e.expiry); now.Before(at) {
			return at.Sub(now), true
		}
	}
	s.fetches.Add(1)
	if s.pending.Load() == nil {
		ch := make(chan struct{})
		s.pending.Store(&ch)
	}
	defer s.endFetch()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	tok, err := s.fetch(ctx)
	cancel()
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("the token endpoint returned no access_token")
	}
	if err != nil {
		s.failing.Store(true)
		s.lastErr.Store(&failure{err})
		s.log.Warn(s.name+": fetching an OAuth2 access token failed", "err", err.Error())
		return 0, false
	}
	s.lastErr.Store(nil)
	if s.failing.Swap(false) {
		s.log.Info(s.name + ": fetched an OAuth2 access token after failures")
	}
	// Expiry is kept on the cache's clock: expires_in counts from when the
	// fetch started; failing that (the JWT flow sets only Expiry, on the
	// wall clock) the time left on the wall clock is carried over.
	e := &entry{header: tok.Type() + " " + tok.AccessToken, fetched: now}
	switch {
	case tok.ExpiresIn > 0:
		e.expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero():
		// Lifetimes are whole seconds; rounding drops the moment that
		// passed since the library read the response.
		e.expiry = s.now().Add(time.Until(tok.Expiry).Round(time.Second))
	}
	s.cur.Store(e)
	at := s.refreshAt(e.fetched, e.expiry)
	// At least minRetry, so that a token already expired on arrival
	// cannot make the loop spin.
	return max(at.Sub(s.now()), s.minRetry), true
}
