package admission

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/redisconn"
	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/limits/redisstore"
)

// Store is an opened counter store and what it needs to stop.
type Store struct {
	limits.Store
	// Kind and Addr say what was opened, so a reload can tell whether
	// its config still matches.
	Kind, Addr string
	// Redis is the client of a Redis store, nil for memory; the spend
	// stream and the admin API's key store share it.
	Redis *redis.Client
	close func() error
	guard *limits.Guard
	spec  storeSpec
}

// Close releases the store's connections.
func (s *Store) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// Run probes an open breaker and reconciles a fail-open guard's backlog
// until ctx ends.
func (s *Store) Run(ctx context.Context) {
	if s.guard != nil {
		// Often enough that a probe is never late by more than an interval.
		s.guard.Run(ctx, min(5*time.Second, s.guard.Breaker.ProbeInterval()))
	}
}

// Matches reports whether l asks for this store, reached the same way:
// a reload that changes the address, credentials, TLS, fail mode or
// breaker needs a restart, and the caller says so.
func (s *Store) Matches(l *config.Limits) bool { return s.spec == specOf(l) }

// storeSpec is everything a store is opened from, comparable.
type storeSpec struct {
	kind     string
	redis    config.Redis // TLS nil; see tls
	tls      config.RedisTLS
	failMode string
	breaker  config.Breaker
}

func specOf(l *config.Limits) storeSpec {
	kind, _ := storeKind(l)
	if kind == "memory" {
		return storeSpec{kind: kind}
	}
	sp := storeSpec{kind: kind, redis: *l.Redis, failMode: cmp.Or(l.FailMode, "closed")}
	if t := sp.redis.TLS; t != nil {
		sp.tls, sp.redis.TLS = *t, nil
	}
	if l.Breaker != nil {
		sp.breaker = *l.Breaker
	}
	return sp
}

func storeKind(l *config.Limits) (string, string) {
	if l.Store == "redis" && l.Redis != nil {
		return "redis", l.Redis.Addr
	}
	return "memory", ""
}

// StoreOptions are what [OpenStore] needs besides the config.
type StoreOptions struct {
	Clock budget.Clock // nil: time.Now
	Log   *slog.Logger // nil: slog.Default()
	// OnBreaker, if set, is told of every change of the Redis store's
	// circuit breaker (metrics, a log line). It runs under the breaker's
	// lock: it must be quick and must not call the store.
	OnBreaker func(from, to limits.BreakerState)
}

// OpenStore opens the store the config asks for. Redis is wrapped in a
// [limits.Guard] with the configured fail mode: "closed" (the default)
// answers 503 while Redis is unreachable, so no budget can be overshot;
// "open" serves and counts locally, then replays the usage into Redis
// when it returns. Either way a [limits.Breaker] stops calling Redis
// after repeated failures until a probe succeeds.
func OpenStore(l *config.Limits, o StoreOptions) (*Store, error) {
	kind, addr := storeKind(l)
	if kind == "memory" {
		return &Store{Store: limits.NewMemory(o.Clock), Kind: kind, spec: specOf(l)}, nil
	}
	opts, err := redisconn.Options(l.Redis)
	if err != nil {
		return nil, err
	}
	// Probes go to Redis on a client of their own (see limits.Guard.Fresh):
	// c may still answer with the outage's dial error for a second after
	// Redis is back. One connection, one dial attempt and no retries: the
	// probe asks once whether Redis answers now.
	fresh, err := redisconn.Options(l.Redis)
	if err != nil {
		return nil, err
	}
	fresh.PoolSize, fresh.MaxRetries, fresh.DialerRetries = 1, -1, 1
	c := redis.NewClient(opts)
	mode := limits.FailClosed
	if l.FailMode == "open" {
		mode = limits.FailOpen
	}
	br := &limits.Breaker{Clock: o.Clock, OnChange: o.OnBreaker}
	if b := l.Breaker; b != nil {
		br.Failures, br.Probe = b.Failures, time.Duration(b.ProbeInterval)
	}
	open := func() *redis.Client {
		fo := *fresh // NewClient fills in defaults: each client gets a copy
		return redis.NewClient(&fo)
	}
	g := &limits.Guard{Primary: redisstore.New(c, redisstore.Options{}), Local: limits.NewMemory(o.Clock), Mode: mode, Log: o.Log, Clock: o.Clock, Breaker: br,
		Fresh: func() (limits.Store, func()) {
			fc := open()
			return redisstore.New(fc, redisstore.Options{}), func() { _ = fc.Close() }
		},
		Ping: func(ctx context.Context) error {
			fc := open()
			defer fc.Close()
			return fc.Ping(ctx).Err()
		}}
	return &Store{Store: g, Kind: kind, Addr: addr, Redis: c, close: c.Close, guard: g, spec: specOf(l)}, nil
}

// Breaker returns the Redis store's circuit breaker and fail mode; nil for
// the memory store.
func (s *Store) Breaker() (*limits.Breaker, limits.FailMode) {
	if s.guard == nil {
		return nil, ""
	}
	return s.guard.Breaker, s.guard.Mode
}
