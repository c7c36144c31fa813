package redistest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/weir-ai/weir/test/redistest"
)

func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		// Checked with CLUSTER KEYSLOT on redis-server 7.0 in cluster mode.
		{"foo", 12182},
		{"bar", 5061},
		{"123456789", 12739},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363}, // an empty tag: the whole key
		{"foo{{bar}}zap", 4015},
		{"{weir}:r:abc", 3236},
		{"{weir}:spend:seen:29000000", 3236},
	}
	for _, tt := range tests {
		if got := redistest.Slot(tt.key); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

// recorder is a testing.TB that keeps the errors a check reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

func TestCheckScripts(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	tests := []struct {
		name   string
		script string
		keys   []string
		errs   int
	}{
		{"declared, one slot", `redis.call('SET', KEYS[1], 1) return redis.call('HSET', KEYS[2], 'f', 'v')`, []string{"{a}x", "{a}y"}, 0},
		{"undeclared key", `redis.call('SET', KEYS[1], 1) return redis.call('SET', '{a}z', 1)`, []string{"{a}x"}, 1},
		{"two slots", `redis.call('SET', KEYS[1], 1) return redis.call('SET', KEYS[2], 1)`, []string{"{a}x", "{b}x"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			scripts := srv.CheckScripts(r, func() {
				if err := c.Eval(ctx, tt.script, tt.keys).Err(); err != nil {
					t.Fatal(err)
				}
			})
			if len(scripts) != 1 || len(r.errs) != tt.errs {
				t.Fatalf("%d scripts, errors %q; want 1 script and %d errors", len(scripts), r.errs, tt.errs)
			}
		})
	}
}
