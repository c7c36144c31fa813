package keyadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/vkey"
)

// Redis is a KeyStore in Redis, shared by replicas: one hash each for keys
// (field: the key's SHA-256 in hex; value: JSON), teams and users, a
// version counter, and a pub/sub channel that carries the new version
// after each change. Each change is one Lua script, so the write, the
// version bump and the announcement are atomic.
//
// Pub/sub is at most once: a replica that was disconnected misses
// announcements. [Syncer] therefore also polls the version counter.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a store under prefix (default [AdminPrefix]; the
// braces keep every key in one Redis Cluster slot).
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = AdminPrefix
	}
	return &Redis{c: c, prefix: prefix}
}

func (r *Redis) k(s string) string { return r.prefix + s }

// putScript: KEYS hash, version; ARGV field, value, create, channel.
var putScript = redis.NewScript(`
if ARGV[3] == '1' then
  if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], v)
return v`)

// delScript: KEYS hash, version; ARGV field, channel.
var delScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], v)
return v`)

func (r *Redis) put(ctx context.Context, hash, field string, v any, create bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("keyadmin: encode: %w", err)
	}
	c := "0"
	if create {
		c = "1"
	}
	n, err := putScript.Run(ctx, r.c, []string{r.k(hash), r.k("version")}, field, b, c, r.k("changed")).Int64()
	if err != nil {
		return fmt.Errorf("keyadmin: redis: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("%s %q: %w", hash, field, ErrExists)
	}
	return nil
}

func (r *Redis) get(ctx context.Context, hash, field string, v any) error {
	b, err := r.c.HGet(ctx, r.k(hash), field).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("keyadmin: redis: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("keyadmin: decode %s %q: %w", hash, field, err)
	}
	return nil
}

func list[T any](ctx context.Context, r *Redis, hash string) ([]*T, error) {
	m, err := r.c.HGetAll(ctx, r.k(hash)).Result()
	if err != nil {
		return nil, fmt.Errorf("keyadmin: redis: %w", err)
	}
	out := make([]*T, 0, len(m))
	for f, s := range m {
		v := new(T)
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return nil, fmt.Errorf("keyadmin: decode %s %q: %w", hash, f, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (r *Redis) PutKey(ctx context.Context, k *KeyRecord, create bool) error {
	return r.put(ctx, "keys", k.Hash.String(), k, create)
}

func (r *Redis) GetKey(ctx context.Context, h vkey.Hash) (*KeyRecord, error) {
	k := new(KeyRecord)
	if err := r.get(ctx, "keys", h.String(), k); err != nil {
		return nil, err
	}
	return k, nil
}

func (r *Redis) DeleteKey(ctx context.Context, h vkey.Hash) error {
	n, err := delScript.Run(ctx, r.c, []string{r.k("keys"), r.k("version")}, h.String(), r.k("changed")).Int64()
	if err != nil {
		return fmt.Errorf("keyadmin: redis: %w", err)
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
	return r.put(ctx, "teams", t.TeamID, t, create)
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
	return r.put(ctx, "users", u.UserID, u, create)
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
		return 0, fmt.Errorf("keyadmin: redis: %w", err)
	}
	return v, nil
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
		slog.Default().Warn("keyadmin: subscribe", "err", err)
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
