package keystore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/vkey"
)

// Redis is a [Store] in Redis, shared by replicas: one hash each for keys
// (field: the key's SHA-256 in hex; value: JSON), teams and users, a
// version counter, a change feed (a sorted set of the records changed,
// scored by version, for [Redis.Since]), an alias index (hash "aliases":
// owner and alias → key) and a pub/sub channel that carries the new
// version after each change. Each change is one Lua script, so the
// compare-and-set, the write, the index, the version bump, the feed and
// the announcement are atomic.
//
// Pub/sub is at most once: a replica that was disconnected misses
// announcements. [Syncer] therefore also polls the version counter.
type Redis struct {
	// FeedLen bounds the change feed (default 100,000 records).
	FeedLen int

	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a store under prefix (default [Prefix]; the
// braces keep every key in one Redis Cluster slot).
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = Prefix
	}
	return &Redis{c: c, prefix: prefix}
}

func (r *Redis) k(s string) string { return r.prefix + s }

// luaIndex is aliasIndex in Lua, for a record decoded by cjson.
const luaIndex = `
local function index(rec)
  local a, t, u = rec['key_alias'], rec['team_id'], rec['user_id']
  if type(a) ~= 'string' or a == '' then return '' end
  if type(t) ~= 'string' then t = '' end
  if type(u) ~= 'string' then u = '' end
  return t .. '\0' .. u .. '\0' .. a
end
`

// luaChanged bumps the version, records the change in the feed (a sorted
// set: one member per record, scored by the version of its last change;
// trimmed to the newest ARGV[feedLen] members, with the newest trimmed
// score kept as the floor) and announces it.
// KEYS[2] version, KEYS[3] feed, KEYS[4] floor.
const luaChanged = `
local function changed(member, feedLen, channel)
  local v = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[3], v, member)
  local n = redis.call('ZCARD', KEYS[3])
  local max = tonumber(feedLen)
  if n > max then
    local cut = redis.call('ZRANGE', KEYS[3], n - max - 1, n - max - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - max - 1)
    redis.call('SET', KEYS[4], cut[2])
  end
  redis.call('PUBLISH', channel, v)
  return v
end
`

// putScript is a create or a compare-and-set update, with the alias
// index kept in the same step.
// KEYS: hash, version, feed, floor, aliases.
// ARGV: field, value, create, expected revision, channel, feed member,
// feed length, is a key ('1'), the new alias index (empty for none).
// Returns the new version, or -1 exists, -2 revision differs, -3 not
// found, -4 alias taken.
var putScript = redis.NewScript(luaIndex + luaChanged + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then cur = cjson.decode(cur) end
if ARGV[3] == '1' then
  if cur then return -1 end
else
  if not cur then return -3 end
  local rev = cur['revision']
  if type(rev) ~= 'number' then rev = 0 end
  if rev ~= tonumber(ARGV[4]) then return -2 end
end
local old = ''
if ARGV[8] == '1' then
  if cur then old = index(cur) end
  local new = ARGV[9]
  if new ~= '' and new ~= old then
    local o = redis.call('HGET', KEYS[5], new)
    if o and o ~= ARGV[1] and redis.call('HEXISTS', KEYS[1], o) == 1 then return -4 end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[8] == '1' then
  if old ~= '' and old ~= ARGV[9] and redis.call('HGET', KEYS[5], old) == ARGV[1] then
    redis.call('HDEL', KEYS[5], old)
  end
  if ARGV[9] ~= '' then redis.call('HSET', KEYS[5], ARGV[9], ARGV[1]) end
end
return changed(ARGV[6], ARGV[7], ARGV[5])`)

// delScript: KEYS as putScript's; ARGV field, channel, feed member, feed
// length. The alias index entry goes with the key.
var delScript = redis.NewScript(luaIndex + luaChanged + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
local i = index(cjson.decode(cur))
if i ~= '' and redis.call('HGET', KEYS[5], i) == ARGV[1] then redis.call('HDEL', KEYS[5], i) end
return changed(ARGV[3], ARGV[4], ARGV[2])`)

func (r *Redis) scriptKeys(hash string) []string {
	return []string{r.k(hash), r.k("version"), r.k("feed"), r.k("feedfloor"), r.k("aliases")}
}

func (r *Redis) feedLen() int { return cmp.Or(r.FeedLen, defaultFeedLen) }

// put writes a record whose JSON carries rev+1; member names it in the
// feed ("k:<hash>", "t:<id>", "u:<id>"); index is a key's alias index.
func (r *Redis) put(ctx context.Context, hash, field, member string, v any, create bool, rev *int64, index string) error {
	expected := *rev
	*rev = expected + 1
	if create {
		*rev = 1
	}
	b, err := json.Marshal(v)
	if err != nil {
		*rev = expected
		return fmt.Errorf("keystore: encode: %w", err)
	}
	c, isKey := "0", "0"
	if create {
		c = "1"
	}
	if hash == "keys" {
		isKey = "1"
	}
	n, err := putScript.Run(ctx, r.c, r.scriptKeys(hash), field, b, c, expected, r.k("changed"), member, r.feedLen(), isKey, index).Int64()
	if err == nil && n >= 0 {
		return nil
	}
	*rev = expected
	switch {
	case err != nil:
		return fmt.Errorf("keystore: redis: %w", err)
	case n == -1:
		return fmt.Errorf("%s %q: %w", hash, field, ErrExists)
	case n == -2:
		return fmt.Errorf("%s %q: %w", hash, field, ErrConflict)
	case n == -3:
		return fmt.Errorf("%s %q: %w", hash, field, ErrNotFound)
	default:
		return fmt.Errorf("%w", ErrAliasTaken)
	}
}

func (r *Redis) get(ctx context.Context, hash, field string, v any) error {
	b, err := r.c.HGet(ctx, r.k(hash), field).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("keystore: redis: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("keystore: decode %s %q: %w", hash, field, err)
	}
	return nil
}

// listPage is how many fields one HSCAN asks for. A full load at 100,000
// keys is about 40 MB: one HGETALL would be a single reply that must
// arrive within the client's read timeout (500 ms), and would block Redis
// while it is built. Pages keep each reply small.
const listPage = 1000

// list reads every record of a hash, in pages. HSCAN returns every field
// present for the whole scan, maybe twice (the map keeps one); a field
// written or deleted meanwhile may or may not be seen, which is harmless:
// the caller read the version first, so the change comes again in the
// next [Redis.Since].
func list[T any](ctx context.Context, r *Redis, hash string) ([]*T, error) {
	m := map[string]string{}
	var cursor uint64
	for {
		kv, next, err := r.c.HScan(ctx, r.k(hash), cursor, "", listPage).Result()
		if err != nil {
			return nil, fmt.Errorf("keystore: redis: %w", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	out := make([]*T, 0, len(m))
	for f, s := range m {
		v := new(T)
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return nil, fmt.Errorf("keystore: decode %s %q: %w", hash, f, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (r *Redis) PutKey(ctx context.Context, k *KeyRecord, create bool) error {
	err := r.put(ctx, "keys", k.Hash.String(), "k:"+k.Hash.String(), k, create, &k.Revision, aliasIndex(k))
	if errors.Is(err, ErrAliasTaken) {
		return fmt.Errorf("%w: %q", ErrAliasTaken, k.Alias)
	}
	return err
}

func (r *Redis) GetKey(ctx context.Context, h vkey.Hash) (*KeyRecord, error) {
	k := new(KeyRecord)
	if err := r.get(ctx, "keys", h.String(), k); err != nil {
		return nil, err
	}
	return k, nil
}

func (r *Redis) DeleteKey(ctx context.Context, h vkey.Hash) error {
	n, err := delScript.Run(ctx, r.c, r.scriptKeys("keys"), h.String(), r.k("changed"), "k:"+h.String(), r.feedLen()).Int64()
	if err != nil {
		return fmt.Errorf("keystore: redis: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("key: %w", ErrNotFound)
	}
	return nil
}

func (r *Redis) ListKeys(ctx context.Context) ([]*KeyRecord, error) {
	ks, err := list[KeyRecord](ctx, r, "keys")
	if err == nil {
		sortKeys(ks)
	}
	return ks, err
}

func (r *Redis) PutTeam(ctx context.Context, t *Team, create bool) error {
	return r.put(ctx, "teams", t.TeamID, "t:"+t.TeamID, t, create, &t.Revision, "")
}

func (r *Redis) GetTeam(ctx context.Context, id string) (*Team, error) {
	t := new(Team)
	if err := r.get(ctx, "teams", id, t); err != nil {
		return nil, err
	}
	return t, nil
}

func (r *Redis) ListTeams(ctx context.Context) ([]*Team, error) {
	ts, err := list[Team](ctx, r, "teams")
	sort.Slice(ts, func(i, j int) bool { return ts[i].TeamID < ts[j].TeamID })
	return ts, err
}

func (r *Redis) PutUser(ctx context.Context, u *User, create bool) error {
	return r.put(ctx, "users", u.UserID, "u:"+u.UserID, u, create, &u.Revision, "")
}

func (r *Redis) GetUser(ctx context.Context, id string) (*User, error) {
	u := new(User)
	if err := r.get(ctx, "users", id, u); err != nil {
		return nil, err
	}
	return u, nil
}

func (r *Redis) ListUsers(ctx context.Context) ([]*User, error) {
	us, err := list[User](ctx, r, "users")
	sort.Slice(us, func(i, j int) bool { return us[i].UserID < us[j].UserID })
	return us, err
}

func (r *Redis) Version(ctx context.Context) (int64, error) {
	v, err := r.c.Get(ctx, r.k("version")).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("keystore: redis: %w", err)
	}
	return v, nil
}

// Since reads the version, the feed's floor and the records changed after
// since in one transaction, then the changed keys. A key written again
// between the two reads arrives in its newer state now and once more at
// the next Since, which is harmless.
func (r *Redis) Since(ctx context.Context, since int64) (*Delta, error) {
	var ver, floor *redis.StringCmd
	var members *redis.StringSliceCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, r.k("version"))
		floor = p.Get(ctx, r.k("feedfloor"))
		members = p.ZRangeByScore(ctx, r.k("feed"), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(since, 10), Max: "+inf"})
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("keystore: redis: %w", err)
	}
	v, _ := ver.Int64() // redis.Nil: no change yet, version 0
	f, _ := floor.Int64()
	d := &Delta{Version: v}
	if since < f || since > v {
		d.Full = true
		return d, nil
	}
	var fields []string
	for _, m := range members.Val() {
		if h, ok := strings.CutPrefix(m, "k:"); ok {
			fields = append(fields, h)
		} else {
			d.Subjects = true
		}
	}
	for len(fields) > 0 {
		n := min(len(fields), 1000)
		vals, err := r.c.HMGet(ctx, r.k("keys"), fields[:n]...).Result()
		if err != nil {
			return nil, fmt.Errorf("keystore: redis: %w", err)
		}
		for i, val := range vals {
			s, ok := val.(string)
			if !ok {
				h, err := vkey.ParseHash(fields[i])
				if err != nil {
					return nil, fmt.Errorf("keystore: feed member %q: %w", fields[i], err)
				}
				d.Deleted = append(d.Deleted, h)
				continue
			}
			k := new(KeyRecord)
			if err := json.Unmarshal([]byte(s), k); err != nil {
				return nil, fmt.Errorf("keystore: decode key %q: %w", fields[i], err)
			}
			d.Keys = append(d.Keys, k)
		}
		fields = fields[n:]
	}
	return d, nil
}

// Changes subscribes to the change channel. The subscription is made
// before Changes returns, so no change after the call is missed while the
// connection holds; go-redis resubscribes after a reconnect, and the
// channel then receives a signal so the caller rereads the version.
func (r *Redis) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	ps := r.c.Subscribe(ctx, r.k("changed"))
	// Wait for the confirmation, so that the subscription is live.
	if _, err := ps.Receive(ctx); err != nil {
		slog.Default().Warn("keystore: subscribe", "err", err)
	}
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer ps.Close()
		for ctx.Err() == nil {
			msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// Timeouts and reconnects: let the caller check the version,
				// and do not spin while Redis is down.
				signal()
				if !isTimeout(err) {
					select {
					case <-ctx.Done():
						return
					case <-time.After(500 * time.Millisecond):
					}
				}
				continue
			}
			switch msg.(type) {
			case *redis.Message, *redis.Subscription:
				signal()
			}
		}
	}()
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
