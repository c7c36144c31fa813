package admission

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/config"
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
}

// Close releases the store's connections.
func (s *Store) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// Run reconciles a fail-open guard's backlog until ctx ends.
func (s *Store) Run(ctx context.Context) {
	if s.guard != nil {
		s.guard.Run(ctx, 5*time.Second)
	}
}

// Matches reports whether l asks for this store.
func (s *Store) Matches(l *config.Limits) bool {
	kind, addr := storeKind(l)
	return s.Kind == kind && s.Addr == addr
}

func storeKind(l *config.Limits) (string, string) {
	if l.Store == "redis" && l.Redis != nil {
		return "redis", l.Redis.Addr
	}
	return "memory", ""
}

// OpenStore opens the store the config asks for. Redis is wrapped in a
// [limits.Guard] with the configured fail mode: "closed" (the default)
// answers 503 while Redis is unreachable, so no budget can be overshot;
// "open" serves and counts locally, then replays the usage into Redis
// when it returns.
func OpenStore(l *config.Limits, clock budget.Clock, log *slog.Logger) (*Store, error) {
	kind, addr := storeKind(l)
	if kind == "memory" {
		return &Store{Store: limits.NewMemory(clock), Kind: kind}, nil
	}
	c := redis.NewClient(&redis.Options{
		Addr:     l.Redis.Addr,
		Password: string(l.Redis.Password),
		DB:       l.Redis.DB,
		// The request path waits on Redis: fail fast and let the fail mode
		// decide, rather than hold the client for seconds.
		DialTimeout:  time.Second,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		MaxRetries:   1,
	})
	mode := limits.FailClosed
	if l.FailMode == "open" {
		mode = limits.FailOpen
	}
	g := &limits.Guard{Primary: redisstore.New(c, redisstore.Options{}), Local: limits.NewMemory(clock), Mode: mode, Log: log, Clock: clock}
	return &Store{Store: g, Kind: kind, Addr: addr, Redis: c, close: c.Close, guard: g}, nil
}
