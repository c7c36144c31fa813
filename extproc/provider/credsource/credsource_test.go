package credsource

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/oauth2"

	"github.com/weir-ai/weir/extproc/provider/oauthcache"
)

type fakeSource struct {
	name   string
	closed int
}

func (f *fakeSource) Close() { f.closed++ }

// TestLeases follows sources through three configs: a source is built
// once per key, shared while any lease holds it, and closed once, when the
// last lease holding it is released.
func TestLeases(t *testing.T) {
	p := NewPool()
	built := map[Key]*fakeSource{}
	get := func(l *Lease, backend, cred string) *fakeSource {
		t.Helper()
		k := Key{backend, Identity("vertex", cred)}
		s, err := Get(l, k, func() (*fakeSource, error) {
			if built[k] != nil {
				t.Fatalf("%s/%s built twice", backend, cred)
			}
			built[k] = &fakeSource{name: backend + "/" + cred}
			return built[k], nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := p.Lease()
	a1, a2 := get(a, "vx", "key-1"), get(a, "az", "secret-1")
	get(a, "vx", "key-1") // a second backend lookup in one lease: one reference
	b := p.Lease()
	if get(b, "vx", "key-1") != a1 {
		t.Fatal("an unchanged credential got a new source")
	}
	b2 := get(b, "az", "secret-2")
	if b2 == a2 {
		t.Fatal("a changed credential kept its source")
	}
	other := get(b, "vx2", "key-1")
	if other == a1 {
		t.Fatal("another backend with the same credential shares its source")
	}
	a.Release()
	a.Release() // idempotent
	if a1.closed != 0 || a2.closed != 1 || b2.closed != 0 {
		t.Fatalf("after releasing a: closed vx %d, az-1 %d, az-2 %d; want 0, 1, 0", a1.closed, a2.closed, b2.closed)
	}
	if n := p.Len(); n != 3 {
		t.Fatalf("%d live sources, want 3", n)
	}
	if _, err := Get(a, Key{"vx", "x"}, func() (*fakeSource, error) { return &fakeSource{}, nil }); err == nil {
		t.Fatal("a released lease took a reference")
	}
	b.Release()
	for _, s := range built {
		if s.closed != 1 {
			t.Errorf("%s closed %d times, want once", s.name, s.closed)
		}
	}
	if n := p.Len(); n != 0 {
		t.Fatalf("%d live sources after every release, want 0", n)
	}
}

func TestGetErrors(t *testing.T) {
	p := NewPool()
	l := p.Lease()
	boom := errors.New("boom")
	if _, err := Get(l, Key{"vx", "1"}, func() (*fakeSource, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if p.Len() != 0 {
		t.Fatal("a failed build was pooled")
	}
	// A nil lease pools nothing.
	s, err := Get(nil, Key{"vx", "1"}, func() (*fakeSource, error) { return &fakeSource{}, nil })
	if err != nil || s == nil || p.Len() != 0 {
		t.Fatalf("nil lease: %v %v %d", s, err, p.Len())
	}
}

// TestReleaseStopsRefreshers checks with real token caches that releasing
// the last lease stops their refresh goroutines, and only then.
func TestReleaseStopsRefreshers(t *testing.T) {
	p := NewPool()
	a, b := p.Lease(), p.Lease()
	var caches []*oauthcache.Cache
	for _, name := range []string{"vx", "az", "vx2"} {
		for _, l := range []*Lease{a, b} {
			c, err := Get(l, Key{name, Identity(name)}, func() (*oauthcache.Cache, error) {
				return oauthcache.New(oauthcache.Options{Name: name, Fetch: func(context.Context) (*oauth2.Token, error) {
					return &oauth2.Token{AccessToken: "t", ExpiresIn: 3600}, nil
				}})
			})
			if err != nil {
				t.Fatal(err)
			}
			if l == a {
				caches = append(caches, c)
			}
		}
	}
	running := func() (n int) {
		for _, c := range caches {
			select {
			case <-c.Done():
			default:
				n++
			}
		}
		return n
	}
	a.Release()
	if n := running(); n != 3 {
		t.Fatalf("%d refreshers running while b holds them, want 3", n)
	}
	b.Release() // Close waits for each refresher to stop.
	if n := running(); n != 0 {
		t.Fatalf("%d refreshers still running after the last release", n)
	}
}
