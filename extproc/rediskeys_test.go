package extproc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

// TestRedisKeyNames: with the Redis store, every key the services write
// (admin keys, spend totals and logs, the spend stream) is
// named "{weir}:<store>:…": one hash tag, so one Redis Cluster slot, and
// a separator after it.
func TestRedisKeyNames(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := refusalServer(t, refusalBackends+fmt.Sprintf(`
limits: {store: redis, redis: {addr: %q}, fail_mode: closed}
`, srv.Addr))
	ctx := context.Background()
	sec, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.svc.keys.PutKey(ctx, &keystore.KeyRecord{Key: vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix()}, CreatedAt: time.Now()}, true); err != nil {
		t.Fatal(err)
	}
	// The services' writer is stopped, so that this one record goes
	// through the stream and the book here, without a race.
	s.svc.cancel()
	s.svc.wg.Wait()
	rec := spend.Record{RequestID: "r1", Time: time.Now(), KeyPrefix: "abc", Model: "gpt-4o-mini", CostMicroUSD: 5}
	if err := s.svc.appender.(interface {
		Append(context.Context, spend.Record) error
	}).Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if n, err := s.svc.writer.Step(ctx); err != nil || n != 1 {
		t.Fatalf("wrote %d records (%v), want 1", n, err)
	}
	c := srv.Client()
	defer c.Close()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"{weir}:admin:keys": false, "{weir}:admin:version": false, "{weir}:spend:totals": false, "{weir}:spend:logs": false, "{weir}:spend": false}
	for _, k := range keys {
		if _, ok := want[k]; ok {
			want[k] = true
		}
		if !strings.HasPrefix(k, "{weir}:") {
			t.Errorf("key %q: want the prefix {weir}:", k)
		}
	}
	for k, found := range want {
		if !found {
			t.Errorf("no key %q among %q", k, keys)
		}
	}
}

// TestRedisLegacyKeyNames: keys an earlier release wrote as "{weir}keys",
// "{weir}totals", … are renamed at start, so admin-API keys and spend
// totals survive the upgrade.
func TestRedisLegacyKeyNames(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	for _, n := range legacyKeyNames {
		if err := c.HSet(ctx, n[0], "f", n[0]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	refusalServer(t, refusalBackends+fmt.Sprintf(`
limits: {store: redis, redis: {addr: %q}, fail_mode: closed}
`, srv.Addr))
	for _, n := range legacyKeyNames {
		if got := c.HGet(ctx, n[1], "f").Val(); got != n[0] {
			t.Errorf("%s holds %q, want the legacy %s's content", n[1], got, n[0])
		}
		if c.Exists(ctx, n[0]).Val() != 0 {
			t.Errorf("%s still exists", n[0])
		}
	}
}
