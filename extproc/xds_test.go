package extproc

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xdsserver"
	"github.com/weir-ai/weir/extproc/xdsclient"
	"github.com/weir-ai/weir/test/xdstest"
)

// TestConfigOverXDS: a replica fed by the controller's xDS server serves
// the pushed keys, keeps serving the previous config when a push does not
// compile (and NACKs it), and answers 401 to a key deleted by a push.
func TestConfigOverXDS(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // bounds a hang only
	defer cancel()
	xs, err := xdsserver.New(xdsserver.Options{Envoy: xds.Options{ExtProcAddress: "127.0.0.1:1063"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	conn := xdstest.Serve(t, xs.Register)

	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = s.Close() })
	c := serveTest(t, s)
	xc := xdsclient.New(xdsclient.Options{Conn: conn, NodeID: "replica-1", Apply: s.ApplyConfig, Logger: slog.New(slog.DiscardHandler)})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { xc.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	if s.Ready() {
		t.Fatal("ready before any config")
	}
	k1, k2, k3 := newTestKey(t), newTestKey(t), newTestKey(t)
	// provider, when set, replaces the first backend's: an unknown one
	// passes validation (the registry, not config, knows providers) and
	// fails Compile.
	cfgWith := func(provider config.Provider, keys ...testKey) *config.Config {
		y := testConfig + "auth:\n  mode: keys\n  keys:\n"
		for _, k := range keys {
			y += fmt.Sprintf("    - {hash: %s}\n", k.hash)
		}
		c, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		if provider != "" {
			c.Backends[0].Provider = provider
		}
		return c
	}
	pushAndWait := func(cfg *config.Config, acked bool) string {
		t.Helper()
		v, err := xs.Push(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for {
			for _, cl := range xs.Clients() {
				if cl.Node != "replica-1" {
					continue
				}
				if acked && cl.AckedVersion == v {
					return v
				}
				if !acked && cl.Nacked != nil && cl.Nacked.Version == v {
					return cl.Nacked.Message
				}
			}
			select {
			case <-xs.Changed():
			case <-ctx.Done():
				t.Fatalf("replica never answered %s: %+v", v, xs.Clients())
			}
		}
	}
	status := func(k testKey) int {
		t.Helper()
		resp := roundTripRequest(t, openStream(t, c, config.FilterLevelRouter), "/v1/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
			map[string]string{"authorization": "Bearer " + k.secret.Reveal()})
		if ir := resp.GetImmediateResponse(); ir != nil {
			return int(ir.GetStatus().GetCode())
		}
		if resp.GetRequestBody() == nil {
			t.Fatalf("neither admitted nor refused: %v", resp)
		}
		return 200
	}

	pushAndWait(cfgWith("", k1, k2), true)
	if !s.Ready() {
		t.Fatalf("not ready after the first config: %v", s.NotReady())
	}
	steps := []struct {
		name   string
		cfg    *config.Config
		acked  bool
		status map[*testKey]int
	}{
		{"pushed keys serve", nil, true, map[*testKey]int{&k1: 200, &k2: 200, &k3: 401}},
		// Keys are resources of their own: a refused config does not hold
		// back key changes, so this push changes the config alone.
		{"a config that does not compile is refused; the previous serves", cfgWith("no-such-provider", k1, k2), false, map[*testKey]int{&k1: 200, &k2: 200, &k3: 401}},
		{"a deleted key gets 401", cfgWith("", k2), true, map[*testKey]int{&k1: 401, &k2: 200, &k3: 401}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.cfg != nil {
				pushAndWait(st.cfg, st.acked)
			}
			if p := s.Runtime().Config.Backends[0].Provider; p != "openai" {
				t.Errorf("serving provider %q, want the last good config's", p)
			}
			for k, want := range st.status {
				if got := status(*k); got != want {
					t.Errorf("key %s…: status %d, want %d", k.hash[:8], got, want)
				}
			}
		})
	}
}
