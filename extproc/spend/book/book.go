// Package book is the spend book: totals of spend per key, team, user,
// model and overall, and the most recent records, kept by the spend
// writer of every replica ([Memory] for one replica, [Redis] shared by
// replicas) and read by the key admin API (controller/keyadmin) through
// [Reader]. It is data plane: replicas write it, the admin API only reads.
package book

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// Reader is what the key admin API reads spend from.
type Reader interface {
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

// Memory is a [spend.Sink] that keeps totals per key, team, user and
// model, and the most recent records, in memory; and a [Reader] over
// them. It is idempotent by request id, as sinks must be. Put it behind
// the spend writer beside the durable sink (a [spend.Sink] fan-out), for
// a single replica; [Redis] shares totals between replicas.
type Memory struct {
	Keep int // records kept for /spend/logs; default 2000

	mu     sync.Mutex
	totals map[[2]string]int64
	seen   spend.Seen
	logs   []spend.Record // ring, oldest overwritten
	next   int
}

// Write implements [spend.Sink].
func (b *Memory) Write(_ context.Context, recs []spend.Record) error {
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

// Total implements [Reader].
func (b *Memory) Total(_ context.Context, s Scope, id string) (budget.MicroUSD, error) {
	if s == ScopeGlobal {
		id = ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.totals[[2]string{string(s), id}], nil
}

// Logs implements [Reader].
func (b *Memory) Logs(_ context.Context, f LogFilter) ([]spend.Record, error) {
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

// Redis is [Memory] in Redis, shared by replicas: totals in
// one hash ("scope:id" → micro-dollars) and recent records in a capped
// list. It is the [spend.Committer] of a spend writer that reads a Redis
// stream: one script per batch adds the records to the totals and
// acknowledges and deletes their stream entries, so a record counts when
// and only when it leaves the stream. An entry no longer pending (another
// writer took it over and committed it) is skipped; a script that did not
// run left its entries pending. So no delay, writer crash or lost reply
// counts a record twice, and nothing is kept per request to remember what
// was counted. Every key the script touches is declared and shares the
// prefix's hash tag (the stream's must be the same), for Redis Cluster.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	Keep   int
}

// RedisStream is a spend source that is a Redis stream read through a
// consumer group, such as redisstream's: the book acknowledges its entries.
type RedisStream interface {
	StreamGroup() (key, group string)
}

// Prefix is the default prefix of the Redis book's keys. Its hash tag is
// the spend stream's (the commit script acknowledges the stream's entries)
// and the key store's, so every script's keys share one Redis Cluster
// slot.
const Prefix = "{weir}:spend:"

// NewRedis returns a book under prefix (default [Prefix]).
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = Prefix
	}
	return &Redis{c: c, prefix: prefix}
}

// commitScript: KEYS totals, logs, stream; ARGV keep, group, then per
// record: its stream entry id, cost, json, and 5 total fields ("" skipped).
// XACK answers 1 only for an entry still pending in the group: the record
// is counted by whichever commit removes it, once.
var commitScript = redis.NewScript(`
local keep = tonumber(ARGV[1])
local group = ARGV[2]
local i = 3
local n = 0
while i <= #ARGV do
  if redis.call('XACK', KEYS[3], group, ARGV[i]) == 1 then
    local cost = tonumber(ARGV[i+1])
    for j = 3, 7 do
      if ARGV[i+j] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[i+j], cost) end
    end
    redis.call('LPUSH', KEYS[2], ARGV[i+2])
    n = n + 1
  end
  redis.call('XDEL', KEYS[3], ARGV[i])
  i = i + 8
end
if n > 0 then redis.call('LTRIM', KEYS[2], 0, keep - 1) end
return n`)

// Commit implements [spend.Committer]. src must be a [RedisStream] whose
// key shares the book's hash tag: one script, one slot.
func (b *Redis) Commit(ctx context.Context, src spend.Source, msgs []spend.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	rs, ok := src.(RedisStream)
	if !ok {
		return fmt.Errorf("spend book: the Redis book commits only a Redis stream's entries, not a %T's", src)
	}
	stream, group := rs.StreamGroup()
	if hashTag(stream) != hashTag(b.prefix) {
		return fmt.Errorf("spend book: stream %q and book %q have different hash tags: not one Redis Cluster slot", stream, b.prefix)
	}
	keep := b.Keep
	if keep <= 0 {
		keep = 2000
	}
	args := make([]any, 0, 2+8*len(msgs))
	args = append(args, keep, group)
	for i := range msgs {
		r := &msgs[i].Record
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("spend book: %w", err)
		}
		args = append(args, msgs[i].ID, r.CostMicroUSD, js)
		for _, t := range totalsOf(r) {
			f := ""
			if t[0] == string(ScopeGlobal) || t[1] != "" {
				f = t[0] + ":" + t[1]
			}
			args = append(args, f)
		}
	}
	keys := []string{b.prefix + "totals", b.prefix + "logs", stream}
	if err := commitScript.Run(ctx, b.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("spend book: redis: %w", err)
	}
	return nil
}

// hashTag is what Redis Cluster hashes of key: the text between the first
// "{" and the next "}" when not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// Total implements [Reader].
func (b *Redis) Total(ctx context.Context, s Scope, id string) (budget.MicroUSD, error) {
	if s == ScopeGlobal {
		id = ""
	}
	v, err := b.c.HGet(ctx, b.prefix+"totals", string(s)+":"+id).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("spend book: redis: %w", err)
	}
	return v, nil
}

// Logs implements [Reader].
func (b *Redis) Logs(ctx context.Context, f LogFilter) ([]spend.Record, error) {
	raw, err := b.c.LRange(ctx, b.prefix+"logs", 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("spend book: redis: %w", err)
	}
	var out []spend.Record
	for _, s := range raw {
		var r spend.Record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("spend book: decode: %w", err)
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
