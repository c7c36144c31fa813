// Package redisstream is the spend queue shared by replicas: a Redis
// Stream that every replica appends to and a writer consumes through a
// consumer group, acknowledging after its sink has the records.
package redisstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/extproc/spend"
)

// Stream is a producer and a [spend.Source]. Its entries leave it either
// by [Stream.Ack] or by a [spend.Committer] that acknowledges them in the
// script that records them ([Stream.StreamGroup]).
type Stream struct {
	c        *redis.Client
	key      string
	group    string
	consumer string
	// MaxLen caps the stream (approximately) while the writer cannot
	// keep up or a sink fails: past it, the oldest records are trimmed,
	// written or not. Acknowledged entries are deleted at once ([Stream.Ack]).
	MaxLen int64
	// AppendDedup is how long an appended request id is remembered, so
	// that a retried append adds nothing; zero means DefaultAppendDedup.
	AppendDedup time.Duration
	// Now is the clock that names the appended-id sets; nil is time.Now.
	Now func() time.Time
	// Block is how long Read waits for new entries.
	Block time.Duration
	// ClaimIdle: entries another consumer has held unacknowledged this long
	// are taken over (their writer died).
	ClaimIdle time.Duration
	// own: this consumer's unacknowledged entries are read once at start
	// (id "0"), the state a crash left behind.
	own bool
}

// New returns a stream on key. consumer names this writer; a writer that
// restarts under the same name resumes its own pending entries.
func New(c *redis.Client, key, group, consumer string) *Stream {
	return &Stream{c: c, key: key, group: group, consumer: consumer, MaxLen: 1_000_000, Block: 2 * time.Second, ClaimIdle: time.Minute, own: true}
}

// StreamGroup names the stream and its consumer group, for a
// [spend.Committer] that acknowledges entries in its own script.
func (s *Stream) StreamGroup() (key, group string) { return s.key, s.group }

// Init creates the consumer group (and the stream) if missing.
func (s *Stream) Init(ctx context.Context) error {
	err := s.c.XGroupCreateMkStream(ctx, s.key, s.group, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return fmt.Errorf("redisstream: create group: %w", err)
	}
	return nil
}

func isBusyGroup(err error) bool {
	return err != nil && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP"
}

// appendScript adds a record unless its request id was appended in the
// last AppendDedup: KEYS the stream, the ids appended in the same 10
// seconds; ARGV request id, dedup seconds, max length (0: no cap, as
// XAddArgs has it), json.
var appendScript = redis.NewScript(`
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'r', ARGV[4])
else
  redis.call('XADD', KEYS[1], '*', 'r', ARGV[4])
end
return 1`)

// appendedSpan is the seconds of append time one set of appended ids
// covers. The client resends a command as it was built, so a retry names
// the set the first attempt did. Append time, not request time: a set
// then outlives its last id by AppendDedup, however long requests take.
const appendedSpan = 10

// DefaultAppendDedup outlasts a client's retries of one append: the
// request path gives an append 5 seconds.
const DefaultAppendDedup = 15 * time.Second

// Append adds a record, once: the client retries a command whose reply
// timed out, and Redis may have run the first, so a record whose request
// id was appended within AppendDedup is not added again. One script: the
// request path's only spend cost.
func (s *Stream) Append(ctx context.Context, r spend.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("redisstream: encode: %w", err)
	}
	dedup := s.AppendDedup
	if dedup <= 0 {
		dedup = DefaultAppendDedup
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	set := s.key + ":appended:" + strconv.FormatInt(now().Unix()/appendedSpan, 10)
	err = appendScript.Run(ctx, s.c, []string{s.key, set}, r.RequestID, max(int64(dedup/time.Second), 1), s.MaxLen, b).Err()
	if err != nil {
		return fmt.Errorf("redisstream: append: %w", err)
	}
	return nil
}

// Read implements [spend.Source]: this consumer's own pending entries
// first, then entries idle at a dead consumer, then new ones.
//
// A missing group (Redis was down when Init ran, or came back empty) is
// created, from the stream's start, and the read retried: records
// appended meanwhile are delivered, and no read fails for good.
func (s *Stream) Read(ctx context.Context, max int) ([]spend.Message, error) {
	msgs, err := s.readNext(ctx, max)
	if err == nil || !strings.Contains(err.Error(), "NOGROUP") {
		return msgs, err
	}
	if ierr := s.Init(ctx); ierr != nil {
		return nil, errors.Join(err, ierr)
	}
	return s.readNext(ctx, max)
}

func (s *Stream) readNext(ctx context.Context, max int) ([]spend.Message, error) {
	if s.own {
		msgs, err := s.read(ctx, max, "0", -1)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
		s.own = false
	}
	if s.ClaimIdle > 0 {
		xs, _, err := s.c.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: s.key, Group: s.group, Consumer: s.consumer, MinIdle: s.ClaimIdle, Start: "0", Count: int64(max)}).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstream: autoclaim: %w", err)
		}
		if len(xs) > 0 {
			return decode(xs)
		}
	}
	return s.read(ctx, max, ">", s.Block)
}

func (s *Stream) read(ctx context.Context, max int, id string, block time.Duration) ([]spend.Message, error) {
	res, err := s.c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: s.group, Consumer: s.consumer, Streams: []string{s.key, id}, Count: int64(max), Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstream: read: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return decode(res[0].Messages)
}

func decode(xs []redis.XMessage) ([]spend.Message, error) {
	out := make([]spend.Message, 0, len(xs))
	for _, x := range xs {
		m := spend.Message{ID: x.ID}
		v, _ := x.Values["r"].(string)
		if err := json.Unmarshal([]byte(v), &m.Record); err != nil {
			// A record that cannot be read would block the stream forever;
			// it is delivered with only its id so the sink keeps a trace.
			m.Record.RequestID = "undecodable:" + x.ID
		}
		out = append(out, m)
	}
	return out, nil
}

// Ack implements [spend.Source]. It also deletes the entries: the
// stream has one consumer group, so a written record is needed by no one,
// and the stream holds only records not yet written instead of the last
// MaxLen requests. XACK and XDEL go in one MULTI, on one key.
func (s *Stream) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, s.key, s.group, ids...)
		p.XDel(ctx, s.key, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstream: ack: %w", err)
	}
	return nil
}
