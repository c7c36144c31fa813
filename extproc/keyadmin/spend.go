package keyadmin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/spend"
)

// Scope is what a spend total is kept for.
type Scope string

const (
	ScopeKey    Scope = "key"   // by key hash prefix (vkey.Hash.Short)
	ScopeTeam   Scope = "team"  // by team id
	ScopeUser   Scope = "user"  // by user id
	ScopeModel  Scope = "model" // by model name
	ScopeGlobal Scope = "global"
)

// LogFilter selects spend logs; empty fields match everything.
type LogFilter struct {
	KeyPrefix, TeamID, UserID, RequestID, Model string
	Start, End                                  time.Time // [Start, End); zero is open
	Limit                                       int       // most recent first; 0 = all kept
}

func (f LogFilter) match(r *spend.Record) bool {
	return (f.KeyPrefix == "" || r.KeyPrefix == f.KeyPrefix) &&
		(f.TeamID == "" || r.TeamID == f.TeamID) &&
		(f.UserID == "" || r.UserID == f.UserID) &&
		(f.RequestID == "" || r.RequestID == f.RequestID) &&
		(f.Model == "" || r.Model == f.Model) &&
		(f.Start.IsZero() || !r.Time.Before(f.Start)) &&
		(f.End.IsZero() || r.Time.Before(f.End))
}

// SpendReader is what the admin API reads spend from.
type SpendReader interface {
	// Total is all spend recorded for id in scope (id ignored for global).
	Total(ctx context.Context, scope Scope, id string) (budget.MicroUSD, error)
	// Logs returns kept records matching f, most recent first.
	Logs(ctx context.Context, f LogFilter) ([]spend.Record, error)
}

// totalsOf lists the (scope, id) pairs a record adds to.
func totalsOf(r *spend.Record) [5][2]string {
	return [5][2]string{
		{string(ScopeGlobal), ""},
		{string(ScopeKey), r.KeyPrefix},
		{string(ScopeTeam), r.TeamID},
		{string(ScopeUser), r.UserID},
		{string(ScopeModel), r.Model},
	}
}

// SpendBook is a [spend.Sink] that keeps totals per key, team, user and
// model, and the most recent records, in memory; and a [SpendReader] over
// them. It is idempotent by request id, as sinks must be. Put it behind
// the spend writer beside the durable sink (a [spend.Sink] fan-out), for
// a single replica; [RedisSpendBook] shares totals between replicas.
type SpendBook struct {
	Keep int // records kept for /spend/logs; default 2000

	mu     sync.Mutex
	totals map[[2]string]int64
	seen   spend.Seen
	logs   []spend.Record // ring, oldest overwritten
	next   int
}

// Write implements [spend.Sink].
func (b *SpendBook) Write(_ context.Context, recs []spend.Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.totals == nil {
		b.totals = map[[2]string]int64{}
	}
	keep := b.Keep
	if keep <= 0 {
		keep = 2000
	}
	for i := range recs {
		r := &recs[i]
		if b.seen.Has(r.RequestID) {
			continue
		}
		b.seen.Add(r.RequestID)
		for _, t := range totalsOf(r) {
			if t[0] == string(ScopeGlobal) || t[1] != "" {
				b.totals[t] += r.CostMicroUSD
			}
		}
		if len(b.logs) < keep {
			b.logs = append(b.logs, *r)
		} else {
			b.logs[b.next] = *r
			b.next = (b.next + 1) % keep
		}
	}
	return nil
}

// Total implements [SpendReader].
func (b *SpendBook) Total(_ context.Context, s Scope, id string) (budget.MicroUSD, error) {
	if s == ScopeGlobal {
		id = ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.totals[[2]string{string(s), id}], nil
}

// Logs implements [SpendReader].
func (b *SpendBook) Logs(_ context.Context, f LogFilter) ([]spend.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []spend.Record
	n := len(b.logs)
	for i := 0; i < n; i++ {
		// newest first: the slot before next, going back.
		r := &b.logs[((b.next-1-i)%n+n)%n]
		if f.match(r) {
			out = append(out, *r)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

// RedisSpendBook is [SpendBook] in Redis, shared by replicas: totals in
// one hash ("scope:id" → micro-dollars), recent records in a capped list,
// and the request ids it counted in one set per 10 seconds of request
// time (seen:<unix time / 10>), so that a redelivered record counts once. One
// script per batch; every key shares the prefix's hash tag and is
// declared, for Redis Cluster.
//
// Dedup is bounded by time: a set is forgotten Dedup after the last
// record of its 10 seconds was written. A record comes back only when
// the writer failed between the sink and the acknowledgement: after a
// producer retry (seconds), or from a dead writer's pending entries,
// claimed after the stream's ClaimIdle (a minute). A record
// redelivered later than Dedup counts again (in these totals only: the
// budgets that limits enforce are counted elsewhere). Memory is about 96
// bytes per request for Dedup: at 10,000 requests/s and the default 2
// minutes, about 115 MB.
type RedisSpendBook struct {
	c      redis.UniversalClient
	prefix string
	Keep   int
	// Dedup is how long a set of request ids is remembered after its
	// last write; zero means DefaultSpendDedup.
	Dedup time.Duration
}

// seenSpan is the seconds of request time one dedup set covers: short, so
// that a set outlives its last write by little more than Dedup.
const seenSpan = 10

// DefaultSpendDedup is twice a stream entry's claim delay (a minute).
const DefaultSpendDedup = 2 * time.Minute

// Prefixes of the keys the Redis stores use. Each carries the same hash
// tag, so every script's keys share one Redis Cluster slot.
const (
	SpendPrefix = "{weir}:spend:"
	AdminPrefix = "{weir}:admin:"
)

// NewRedisSpendBook returns a book under prefix (default [SpendPrefix]).
func NewRedisSpendBook(c redis.UniversalClient, prefix string) *RedisSpendBook {
	if prefix == "" {
		prefix = SpendPrefix
	}
	return &RedisSpendBook{c: c, prefix: prefix}
}

// recordScript: KEYS totals, logs, then the batch's seen sets; ARGV keep,
// dedup seconds, then per record: its seen set's index in KEYS, request
// id, cost, json, and 5 total fields ("" skipped).
var recordScript = redis.NewScript(`
local keep = tonumber(ARGV[1])
local dedup = tonumber(ARGV[2])
local i = 3
local n = 0
while i <= #ARGV do
  if redis.call('SADD', KEYS[tonumber(ARGV[i])], ARGV[i+1]) == 1 then
    local cost = tonumber(ARGV[i+2])
    for j = 4, 8 do
      if ARGV[i+j] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[i+j], cost) end
    end
    redis.call('LPUSH', KEYS[2], ARGV[i+3])
    n = n + 1
  end
  i = i + 9
end
for k = 3, #KEYS do
  redis.call('EXPIRE', KEYS[k], dedup)
end
redis.call('LTRIM', KEYS[2], 0, keep - 1)
return n`)

// Write implements [spend.Sink].
func (b *RedisSpendBook) Write(ctx context.Context, recs []spend.Record) error {
	if len(recs) == 0 {
		return nil
	}
	keep := b.Keep
	if keep <= 0 {
		keep = 2000
	}
	dedup := b.Dedup
	if dedup <= 0 {
		dedup = DefaultSpendDedup
	}
	keys := []string{b.prefix + "totals", b.prefix + "logs"}
	// A batch spans a few sets: a linear search beats a map.
	set := func(t time.Time) int {
		k := b.prefix + "seen:" + strconv.FormatInt(t.Unix()/seenSpan, 10)
		for i := 2; i < len(keys); i++ {
			if keys[i] == k {
				return i + 1
			}
		}
		keys = append(keys, k)
		return len(keys)
	}
	args := make([]any, 0, 2+9*len(recs))
	args = append(args, keep, max(int64(dedup/time.Second), 1))
	for i := range recs {
		r := &recs[i]
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("keyadmin: spend: %w", err)
		}
		args = append(args, set(r.Time), r.RequestID, r.CostMicroUSD, js)
		for _, t := range totalsOf(r) {
			f := ""
			if t[0] == string(ScopeGlobal) || t[1] != "" {
				f = t[0] + ":" + t[1]
			}
			args = append(args, f)
		}
	}
	if err := recordScript.Run(ctx, b.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("keyadmin: spend: redis: %w", err)
	}
	return nil
}

// Total implements [SpendReader].
func (b *RedisSpendBook) Total(ctx context.Context, s Scope, id string) (budget.MicroUSD, error) {
	if s == ScopeGlobal {
		id = ""
	}
	v, err := b.c.HGet(ctx, b.prefix+"totals", string(s)+":"+id).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("keyadmin: spend: redis: %w", err)
	}
	return v, nil
}

// Logs implements [SpendReader].
func (b *RedisSpendBook) Logs(ctx context.Context, f LogFilter) ([]spend.Record, error) {
	raw, err := b.c.LRange(ctx, b.prefix+"logs", 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("keyadmin: spend: redis: %w", err)
	}
	var out []spend.Record
	for _, s := range raw {
		var r spend.Record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("keyadmin: spend: decode: %w", err)
		}
		if f.match(&r) {
			out = append(out, r)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}
