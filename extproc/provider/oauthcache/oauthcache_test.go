package oauthcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider/oauthcache/oauthcachetest"
)

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fetcher hands out tok-1, tok-2... with the given lifetime, or fails
// while fail is set.
type fetcher struct {
	n       atomic.Int64
	fail    atomic.Bool
	seconds int64
}

func (f *fetcher) fetch(context.Context) (*oauth2.Token, error) {
	if f.fail.Load() {
		return nil, errors.New("oauth2: cannot fetch token: 400 Bad Request")
	}
	n := f.n.Add(1)
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n), TokenType: "Bearer", ExpiresIn: f.seconds}, nil
}

func newCache(t *testing.T, f *fetcher, log *bytes.Buffer) (*Cache, *oauthcachetest.Clock) {
	t.Helper()
	clk := oauthcachetest.NewClock(start)
	o := Options{Name: "test", Fetch: f.fetch, Now: clk.Now, After: clk.After}
	if log != nil {
		o.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, clk
}

func wait(t *testing.T, clk *oauthcachetest.Clock) time.Duration {
	t.Helper()
	d, ok := clk.NextWait(10 * time.Second)
	if !ok {
		t.Fatal("the refresh goroutine did not take its next step")
	}
	return d
}

func header(t *testing.T, c *Cache) string {
	t.Helper()
	h, err := c.Header(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestOneFetchForManyRequests(t *testing.T) {
	f := &fetcher{seconds: 3600}
	c, clk := newCache(t, f, nil)
	if d := wait(t, clk); d != time.Hour-DefaultMargin {
		t.Fatalf("next refresh in %v, want %v", d, time.Hour-DefaultMargin)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 100 {
				if h, err := c.Header(context.Background()); err != nil || h != "Bearer tok-1" {
					t.Errorf("Header() = %q, %v", h, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := f.n.Load(); n != 1 {
		t.Fatalf("%d fetches for 5000 requests, want 1", n)
	}
	if got, want := c.Expiry(), start.Add(time.Hour); !got.Equal(want) {
		t.Fatalf("expiry %v, want %v", got, want)
	}
}

func TestRefreshBeforeExpiry(t *testing.T) {
	f := &fetcher{seconds: 3600}
	c, clk := newCache(t, f, nil)
	d := wait(t, clk)
	// Just before the refresh point the goroutine is woken early (as a
	// timer may be): it must not fetch, and must wait the rest.
	clk.Advance(d - time.Second)
	clk.Fire()
	if d2 := wait(t, clk); d2 != time.Second {
		t.Fatalf("woken early: next wait %v, want 1s", d2)
	}
	if h := header(t, c); h != "Bearer tok-1" || f.n.Load() != 1 {
		t.Fatalf("early wake fetched: %q after %d fetches", h, f.n.Load())
	}
	clk.Advance(time.Second)
	clk.Fire()
	if d3 := wait(t, clk); d3 != time.Hour-DefaultMargin {
		t.Fatalf("after refresh: next wait %v", d3)
	}
	// Refreshed five minutes before the first token expired.
	if h := header(t, c); h != "Bearer tok-2" {
		t.Fatalf("after refresh: %q", h)
	}
	if got, want := c.Expiry(), start.Add(2*time.Hour-DefaultMargin); !got.Equal(want) {
		t.Fatalf("expiry %v, want %v", got, want)
	}
}

func TestShortLivedTokenRefreshedHalfway(t *testing.T) {
	f := &fetcher{seconds: 60}
	_, clk := newCache(t, f, nil)
	if d := wait(t, clk); d != 30*time.Second {
		t.Fatalf("a 60 s token is refreshed after %v, want 30s", d)
	}
}

func TestUnavailableUntilFirstToken(t *testing.T) {
	f := &fetcher{seconds: 3600}
	f.fail.Store(true)
	var log bytes.Buffer
	c, clk := newCache(t, f, &log)
	retries := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, want := range retries {
		if d := wait(t, clk); d != want*time.Second {
			t.Fatalf("retry %d after %v, want %v", i, d, want*time.Second)
		}
		_, err := c.Header(context.Background())
		if !errors.Is(err, errs.ErrUnavailable) || errs.Status(err) != 503 {
			t.Fatalf("Header() error %v, want ErrUnavailable (503)", err)
		}
		// The reason is for the log; the client's message is generic.
		if !strings.Contains(err.Error(), "400 Bad Request") || strings.Contains(string(errs.Body(err)), "400") {
			t.Fatalf("error %v, client body %s: want the reason in the error only", err, errs.Body(err))
		}
		if i == len(retries)-1 {
			// The provider recovers before the last retry fires, not while
			// its fetch may already be running: the order is fixed.
			f.fail.Store(false)
		}
		clk.Advance(want * time.Second)
		clk.Fire()
	}
	// The successful fetch arms the refresh timer; once it is armed the
	// token is in place.
	wait(t, clk)
	if h := header(t, c); h != "Bearer tok-1" {
		t.Fatalf("after recovery: %q", h)
	}
	if !strings.Contains(log.String(), "400 Bad Request") {
		t.Fatalf("the fetch error was not logged: %s", log.String())
	}
}

func TestExpiredWhileRefreshFails(t *testing.T) {
	f := &fetcher{seconds: 3600}
	var log bytes.Buffer
	c, clk := newCache(t, f, &log)
	d := wait(t, clk)
	f.fail.Store(true)
	clk.Advance(d)
	clk.Fire()
	// The old token has 5 minutes left: the retry waits the backoff (1 s)
	// and the token stays in use meanwhile.
	if r := wait(t, clk); r != time.Second {
		t.Fatalf("retry after %v", r)
	}
	if h := header(t, c); h != "Bearer tok-1" {
		t.Fatalf("old token not kept while refreshing: %q", h)
	}
	clk.Advance(DefaultMargin)
	_, err := c.Header(context.Background())
	if !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("expired token: error %v", err)
	}
	if strings.Contains(err.Error(), "tok-1") || strings.Contains(log.String(), "tok-1") {
		t.Fatal("the token appeared in an error or the log")
	}
}

func TestRetryBoundedByTokenLifetime(t *testing.T) {
	f := &fetcher{seconds: 3600}
	_, clk := newCache(t, f, nil)
	d := wait(t, clk)
	f.fail.Store(true)
	// Failures double the backoff towards a minute; with 5 minutes of
	// token left every wait stays below half of what is left.
	clk.Advance(d)
	left := DefaultMargin
	for range 10 {
		clk.Fire()
		r := wait(t, clk)
		if r > left/2 && r > DefaultMinRetry {
			t.Fatalf("retry after %v with %v of token left", r, left)
		}
		clk.Advance(r)
		left -= r
		if left <= 0 {
			break
		}
	}
}

func TestNoFetcher(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("no error without a fetcher")
	}
}

func TestCloseStops(t *testing.T) {
	f := &fetcher{seconds: 3600}
	c, clk := newCache(t, f, nil)
	wait(t, clk)
	c.Close()
	c.Close() // idempotent
	if h := header(t, c); h != "Bearer tok-1" {
		t.Fatalf("after Close: %q", h)
	}
}

// blocking fetches block until released or until their context is done,
// and report each context they get.
type blocking struct {
	ctxs    chan context.Context
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{ctxs: make(chan context.Context, 8), release: make(chan struct{})}
}

func (b *blocking) fetch(ctx context.Context) (*oauth2.Token, error) {
	b.ctxs <- ctx
	select {
	case <-b.release:
		return &oauth2.Token{AccessToken: "tok-late", ExpiresIn: 3600}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("post token: %w", ctx.Err())
	}
}

// TestHeaderWaitsForFetchUnderWay: a request arriving while the first
// fetch runs waits for it, but no longer than its context and Wait allow.
// Fetches themselves run with a deadline.
func TestHeaderWaitsForFetchUnderWay(t *testing.T) {
	b := newBlocking()
	clk := oauthcachetest.NewClock(start)
	c, err := New(Options{Name: "test", Backend: "vx", Fetch: b.fetch, Now: clk.Now, After: clk.After, Wait: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fctx := <-b.ctxs
	if _, ok := fctx.Deadline(); !ok {
		t.Fatal("the fetch runs without a deadline")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"caller gives up", cancelled, context.Canceled},
		{"wait bound", context.Background(), context.DeadlineExceeded},
	} {
		_, err := c.Header(tc.ctx)
		var ce *errs.CredentialError
		if !errors.As(err, &ce) || ce.Backend != "vx" || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "waiting") {
			t.Errorf("%s: error %v, want a credential error for vx from %v while waiting", tc.name, err, tc.want)
		}
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Header(context.Background())
		waiting <- err
	}()
	close(b.release)
	wait(t, clk)
	if h := header(t, c); h != "Bearer tok-late" {
		t.Fatalf("after the fetch: %q", h)
	}
	// The waiter either waited for the fetch or came after it; with a
	// 1 ns Wait it may also have given up. It never got a stale answer.
	if err := <-waiting; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v", err)
	}
}

// TestCloseCancelsFetch: releasing a cache whose fetch hangs does not wait
// for the fetch's timeout.
func TestCloseCancelsFetch(t *testing.T) {
	b := newBlocking()
	c, err := New(Options{Name: "test", Fetch: b.fetch, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fctx := <-b.ctxs
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // a safety net, not a sleep
		t.Fatal("Close waited for the hanging fetch")
	}
	if !errors.Is(fctx.Err(), context.Canceled) {
		t.Fatalf("fetch context: %v", fctx.Err())
	}
	if _, err := c.Header(context.Background()); err == nil || !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("after Close without a token: %v", err)
	}
}

func BenchmarkHeader(b *testing.B) {
	f := &fetcher{seconds: 3600}
	c, err := New(Options{Fetch: f.fetch})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for {
		if _, err := c.Header(context.Background()); err == nil {
			break
		}
		time.Sleep(time.Millisecond) // the real clock: wait for the first fetch
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Header(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnreachableCacheStops(t *testing.T) {
	f := &fetcher{seconds: 3600}
	c, err := New(Options{Fetch: f.fetch})
	if err != nil {
		t.Fatal(err)
	}
	done := c.s.done
	c = nil
	_ = c
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatal("the refresh goroutine outlived its unreachable Cache")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
