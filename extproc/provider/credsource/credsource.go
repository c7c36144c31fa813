// Package credsource keeps providers' credential sources (OAuth2 token
// caches, AWS credential caches) alive across config reloads.
//
// A reload compiles every backend's translator again. Were each to build a
// new token cache, every reload, even one that only adds a key, would leave
// Vertex and Entra ID backends without a token until the new caches fetched
// one: a window of 503s. Instead translators take their source from a
// [Pool], keyed by the backend's name and a hash of its credential config
// ([Identity]). An unchanged credential gets the running source, token and
// all; a changed one gets a fresh source.
//
// Sources are reference counted by [Lease]: each compiled config holds one
// lease for the sources its translators use. When a config is replaced
// (or fails to compile) its lease is released, and a source no lease holds
// any more is closed, which stops its background refresh.
package credsource

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
)

// Source is a credential source with background work to stop.
type Source interface{ Close() }

// Key names one source: a backend and its credential's [Identity].
type Key struct {
	Backend  string
	Identity string
}

// Identity hashes the parts of a credential config (provider, secrets,
// endpoints, scopes) into a key that changes when any part does. The hash,
// never the parts, is kept.
func Identity(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		// Length-prefixed, so that ("ab","c") and ("a","bc") differ.
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Pool holds the sources that some lease references. Its methods are safe
// for concurrent use; none is on the request path.
type Pool struct {
	mu      sync.Mutex
	entries map[Key]*entry
}

type entry struct {
	src  Source
	refs int // leases holding it
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{entries: map[Key]*entry{}} }

// Len is the number of live sources (for tests and metrics).
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Lease starts a set of references, one per key, taken by [Get].
func (p *Pool) Lease() *Lease { return &Lease{pool: p, keys: map[Key]struct{}{}} }

// Lease is the references one compiled config holds.
type Lease struct {
	pool     *Pool
	keys     map[Key]struct{} // guarded by pool.mu
	released bool             // guarded by pool.mu
}

// Get returns the pooled source for key, building it with build if no
// live lease holds one, and records the reference in l. A nil lease pools
// nothing: the caller owns what build returns.
func Get[T Source](l *Lease, key Key, build func() (T, error)) (T, error) {
	if l == nil {
		return build()
	}
	p := l.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	var zero T
	if l.released {
		return zero, fmt.Errorf("credsource: lease already released (backend %s)", key.Backend)
	}
	e := p.entries[key]
	if e == nil {
		// Built under the lock: builders start a goroutine and parse keys,
		// nothing slow, and two compiles must not build one key twice.
		src, err := build()
		if err != nil {
			return zero, err
		}
		e = &entry{src: src}
		p.entries[key] = e
	}
	src, ok := e.src.(T)
	if !ok {
		// The identity includes the provider, so this is a bug.
		return zero, fmt.Errorf("credsource: backend %s: pooled source is a %T", key.Backend, e.src)
	}
	if _, ok := l.keys[key]; !ok {
		l.keys[key] = struct{}{}
		e.refs++
	}
	return src, nil
}

// Release drops l's references and closes the sources no lease holds any
// more. It is idempotent. Requests still using a closed source keep what it
// cached (an OAuth2 token stays readable until it expires).
func (l *Lease) Release() {
	if l == nil {
		return
	}
	p := l.pool
	var closing []Source
	p.mu.Lock()
	if !l.released {
		l.released = true
		for k := range l.keys {
			e := p.entries[k]
			if e.refs--; e.refs == 0 {
				delete(p.entries, k)
				closing = append(closing, e.src)
			}
		}
	}
	p.mu.Unlock()
	// Outside the lock: Close waits for a refresh goroutine to end.
	for _, s := range closing {
		s.Close()
	}
}
