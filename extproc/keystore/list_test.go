package keystore

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/weir-ai/weir/test/redistest"
)

// largestReply records the most fields any one hash read returned.
type largestReply struct{ max int }

func (l *largestReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *largestReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (l *largestReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		n := 0
		switch c := cmd.(type) {
		case *redis.MapStringStringCmd:
			n = len(c.Val())
		case *redis.ScanCmd:
			kv, _ := c.Val()
			n = len(kv) / 2
		}
		l.max = max(l.max, n)
		return err
	}
}

// TestListKeysInPages: a full key load reads the store in bounded pages,
// so that at 100,000 keys (about 40 MB) no single reply has to arrive
// within the client's read timeout, and every key is still returned once.
func TestListKeysInPages(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	st := NewRedis(c, Prefix)
	const n = 2500
	want := map[string]bool{}
	for range n {
		_, k := newKey(t)
		if err := st.PutKey(ctx, k, true); err != nil {
			t.Fatal(err)
		}
		want[k.Hash.String()] = true
	}
	var l largestReply
	c.AddHook(&l)
	got, err := st.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range got {
		h := k.Hash.String()
		if !want[h] || seen[h] {
			t.Fatalf("unexpected or repeated key %s", h)
		}
		seen[h] = true
	}
	if len(seen) != n {
		t.Errorf("listed %d keys, want %d", len(seen), n)
	}
	if l.max > 2*listPage {
		t.Errorf("one reply held %d records; want pages of about %d", l.max, listPage)
	}
}
