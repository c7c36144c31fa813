// Package redisstore is the [limits.Store] that replicas share: counters
// live in Redis and every reserve or settle is one Lua script, so it is
// atomic and costs one round trip.
//
// Scripts run by EVALSHA; go-redis falls back to EVAL when the server
// answers NOSCRIPT (after a restart or SCRIPT FLUSH), which loads the
// script for the next call.
//
// All keys share the planner's hash tag ("{weir}" by default), so the
// scripts also run on Redis Cluster, within one slot.
package redisstore

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/limits"
)

//go:embed reserve.lua
var reserveLua string

//go:embed settle.lua
var settleLua string

var (
	reserveScript = redis.NewScript(reserveLua)
	settleScript  = redis.NewScript(settleLua)
)

// Store is a [limits.Store] in Redis.
type Store struct {
	c      redis.Scripter
	clock  budget.Clock
	prefix string
}

// Options configure a [Store].
type Options struct {
	// Clock supplies "now" to the scripts. Nil uses the Redis server's
	// clock, which keeps replicas with drifting clocks on one timeline;
	// tests inject one to cross windows without sleeping.
	Clock budget.Clock
	// Prefix of the record keys; it must carry the planner's hash tag.
	// Default "{weir}".
	Prefix string
}

// New returns a store on c (a *redis.Client, ClusterClient or Ring).
func New(c redis.Scripter, o Options) *Store {
	if o.Prefix == "" {
		o.Prefix = "{weir}"
	}
	return &Store{c: c, clock: o.Clock, prefix: o.Prefix}
}

func (s *Store) now() int64 {
	if s.clock == nil {
		return 0
	}
	return s.clock().UnixMilli()
}

func (s *Store) keys(id string, cs []limits.Counter) []string {
	keys := make([]string, 1, 1+2*len(cs))
	keys[0] = s.prefix + ":r:" + id
	for i := range cs {
		keys = append(keys, cs[i].Key)
		switch {
		case cs[i].Window == limits.Sliding:
			keys = append(keys, cs[i].Key+":h")
		case idle(&cs[i]) > 0:
			keys = append(keys, cs[i].Key+":i")
		}
	}
	return keys
}

// Reserve implements [limits.Store].
func (s *Store) Reserve(ctx context.Context, id string, cs []limits.Counter, ttl time.Duration) (limits.Result, error) {
	args := make([]any, 3, 3+5*len(cs))
	args[0], args[1], args[2] = s.now(), ttl.Milliseconds(), id
	for i := range cs {
		c := &cs[i]
		var param int64
		switch c.Window {
		case limits.Fixed:
			if !c.End.IsZero() {
				param = c.End.UnixMilli()
			}
		case limits.Sliding:
			param = c.Span.Milliseconds()
		}
		args = append(args, int64(c.Window), c.Limit, c.Amount, param, idle(c))
	}
	v, err := reserveScript.Run(ctx, s.c, s.keys(id, cs), args...).Int64Slice()
	if err != nil {
		return limits.Result{Refused: -1}, fmt.Errorf("redisstore: reserve: %w", err)
	}
	if len(v) == 1 && v[0] == 2 {
		return limits.Result{Duplicate: true, Refused: -1}, nil
	}
	if len(v) != 3+2*len(cs) {
		return limits.Result{Refused: -1}, fmt.Errorf("redisstore: reserve: script returned %d values for %d counters", len(v), len(cs))
	}
	res := limits.Result{OK: v[0] == 1, Refused: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Millisecond, States: make([]limits.State, len(cs))}
	for i := range res.States {
		res.States[i] = limits.State{Used: v[3+2*i], Reset: time.Duration(v[4+2*i]) * time.Millisecond}
	}
	return res, nil
}

// idle is a fixed counter's idle expiry in ms, 0 for none (and for
// other windows, which forget by themselves).
func idle(c *limits.Counter) int64 {
	if c.Window != limits.Fixed || c.Idle <= 0 {
		return 0
	}
	return max(c.Idle.Milliseconds(), 1)
}

// Settle implements [limits.Store].
func (s *Store) Settle(ctx context.Context, id string, cs []limits.Counter, actual limits.Usage) (bool, error) {
	args := make([]any, 5, 5+3*len(cs))
	args[0], args[1] = s.now(), id
	args[2], args[3], args[4] = actual.Cost, actual.Tokens, actual.Requests
	for i := range cs {
		var hasIdle int64
		if idle(&cs[i]) > 0 {
			hasIdle = 1
		}
		args = append(args, int64(cs[i].Window), int64(cs[i].Dim), hasIdle)
	}
	n, err := settleScript.Run(ctx, s.c, s.keys(id, cs), args...).Int64()
	if err != nil {
		return false, fmt.Errorf("redisstore: settle: %w", err)
	}
	return n == 1, nil
}

// Get returns a counter's value (a fixed counter, or a sliding window's
// total), for tests and the admin API.
func (s *Store) Get(ctx context.Context, c limits.Counter) (int64, error) {
	rc, ok := s.c.(redis.Cmdable)
	if !ok {
		return 0, fmt.Errorf("redisstore: client cannot read keys")
	}
	var cmd *redis.StringCmd
	switch c.Window {
	case limits.Sliding:
		cmd = rc.HGet(ctx, c.Key+":h", ":total")
	case limits.Gauge:
		n, err := rc.ZCard(ctx, c.Key).Result()
		return n, err
	default:
		cmd = rc.Get(ctx, c.Key)
	}
	n, err := cmd.Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}
