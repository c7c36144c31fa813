package keyadmin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/redistest"
)

// benchKeys is the store's size before the timed creations.
const benchKeys = 100_000

// BenchmarkKeyGenerate creates keys through /key/generate in a store that
// already holds 100,000, with a replica's syncer running as in a
// deployment, and reports two latencies per creation: the request's
// ("req-p50-µs", "req-p99-µs") and until the new key authenticates in the
// replica's keyring ("visible-p50-µs", "visible-p99-µs"). Run:
//
//	go test -run '^$' -bench KeyGenerate -benchtime 2000x ./controller/keyadmin/
//
// (the Redis case needs redis-server; WEIR_REQUIRE_REDIS=1 fails instead
// of skipping).
func BenchmarkKeyGenerate(b *testing.B) {
	for _, bk := range []struct {
		name  string
		store func(b *testing.B) keystore.Store
	}{
		{"memory", func(*testing.B) keystore.Store { return keystore.NewMemory() }},
		{"redis", func(b *testing.B) keystore.Store {
			c := redistest.Start(b).Client()
			b.Cleanup(func() { c.Close() })
			return keystore.NewRedis(c, "")
		}},
	} {
		b.Run(bk.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := bk.store(b)
			prefill(b, store, benchKeys)

			ring := vkey.NewKeyring()
			synced := make(chan struct{}, 1)
			sy := &keystore.Syncer{Store: store, Ring: ring, OnSync: func(int64, int) {
				select {
				case synced <- struct{}{}:
				default:
				}
			}}
			// The first, full load before Run, retried: under load, a
			// 40 MB HGETALL may exceed the client's read timeout, and
			// Run gives up when its first Sync fails.
			for i := 0; ; i++ {
				_, err := sy.Sync(ctx)
				if err == nil {
					break
				}
				if i == 5 {
					b.Fatal(err)
				}
			}
			if ring.Len() != benchKeys {
				b.Fatalf("%d keys loaded", ring.Len())
			}
			done := make(chan struct{})
			go func() { defer close(done); _ = sy.Run(ctx) }()
			defer func() { cancel(); <-done }()
			h, err := New(master, store, &book.Memory{})
			if err != nil {
				b.Fatal(err)
			}

			req := make([]time.Duration, 0, b.N)
			vis := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, adminRequest(`{"models":["gpt-4o-mini"],"max_budget":10,"metadata":{"env":"bench"}}`))
				req = append(req, time.Since(start))
				if rec.Code != 200 {
					b.Fatalf("generate: %d %s", rec.Code, rec.Body)
				}
				sec, err := vkey.FromHeaders("", gjson.GetBytes(rec.Body.Bytes(), "key").Str)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := ring.Authenticate(sec); err == nil {
						break
					}
					select {
					case <-synced:
					case <-done:
						b.Fatal("the syncer stopped")
					}
				}
				vis = append(vis, time.Since(start))
			}
			b.StopTimer()
			report(b, "req", req)
			report(b, "visible", vis)
		})
	}
}

func adminRequest(body string) *http.Request {
	r := httptest.NewRequest("POST", "/key/generate", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+master)
	return r
}

// prefill stores n keys, eight writers at a time.
func prefill(b *testing.B, store keystore.Store, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				sec, err := vkey.Generate()
				if err != nil {
					errc <- err
					return
				}
				k := &keystore.KeyRecord{Key: vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix(), Models: []string{"gpt-4o-mini"}},
					CreatedAt: time.Now()}
				if err := store.PutKey(context.Background(), k, true); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

func report(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[min(len(d)-1, int(q*float64(len(d))))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), name+"-p50-µs")
	b.ReportMetric(at(0.99), name+"-p99-µs")
}
