package xdsclient_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xdsserver"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/extproc/xdsclient"
	"github.com/weir-ai/weir/test/xdstest"
)

// applier records applied configs and fails on demand.
type applier struct {
	mu      sync.Mutex
	applied []*config.Config
	fail    error
	done    chan struct{} // receives after each Apply call
}

func (a *applier) apply(c *config.Config, _ string) error {
	a.mu.Lock()
	err := a.fail
	if err == nil {
		a.applied = append(a.applied, c)
	}
	a.mu.Unlock()
	a.done <- struct{}{}
	return err
}

func (a *applier) last() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.applied) == 0 {
		return nil
	}
	return a.applied[len(a.applied)-1]
}

type env struct {
	srv  *xdsserver.Server
	conn *grpc.ClientConn
}

func startServer(t *testing.T) env {
	t.Helper()
	s, err := xdsserver.New(xdsserver.Options{Envoy: xds.Options{ExtProcAddress: "127.0.0.1:1063"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return env{s, xdstest.Serve(t, s.Register)}
}

func ctxT(t *testing.T) context.Context {
	// Bounds a hung test; every wait is on a channel.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func runClient(t *testing.T, e env, node string, a *applier) *xdsclient.Client {
	t.Helper()
	c := xdsclient.New(xdsclient.Options{Conn: e.conn, NodeID: node, Apply: a.apply, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func waitApply(t *testing.T, a *applier) {
	t.Helper()
	select {
	case <-a.done:
	case <-ctxT(t).Done():
		t.Fatal("no apply")
	}
}

func waitClient(t *testing.T, s *xdsserver.Server, node string, ok func(xdsserver.Client) bool) xdsserver.Client {
	t.Helper()
	ctx := ctxT(t)
	for {
		for _, c := range s.Clients() {
			if c.Node == node && ok(c) {
				return c
			}
		}
		select {
		case <-s.Changed():
		case <-ctx.Done():
			t.Fatalf("client %s never reached the wanted state: %+v", node, s.Clients())
		}
	}
}

func keyed(keys ...string) *config.Config {
	c := xdstest.LargeConfig(2, 0)
	for _, k := range keys {
		c.Auth.Keys = append(c.Auth.Keys, config.KeyConfig{Hash: xdstest.KeyHash(k)})
	}
	return c
}

func hashes(c *config.Config) []string {
	var out []string
	for _, k := range c.Auth.Keys {
		out = append(out, k.Hash)
	}
	return out
}

func TestAppliesPushesAndACKs(t *testing.T) {
	e := startServer(t)
	a := &applier{done: make(chan struct{}, 16)}
	a.fail = errors.New("refused")
	c := runClient(t, e, "extproc-a", a)
	// A first config that fails to apply leaves the replica unsynced (and
	// so not ready). The NACK is sent after the client handled it, so
	// seeing it makes the check below deterministic.
	if _, err := e.srv.Push(t.Context(), keyed("sk-0")); err != nil {
		t.Fatal(err)
	}
	waitApply(t, a)
	waitClient(t, e.srv, "extproc-a", func(c xdsserver.Client) bool { return c.Nacked != nil })
	select {
	case <-c.Synced():
		t.Fatal("synced without a config applied")
	default:
	}
	a.mu.Lock()
	a.fail = nil
	a.mu.Unlock()
	v1, err := e.srv.Push(t.Context(), keyed("sk-a"))
	if err != nil {
		t.Fatal(err)
	}
	waitApply(t, a)
	select {
	case <-c.Synced():
	case <-ctxT(t).Done():
		t.Fatal("not synced after a full config")
	}
	got := a.last()
	if h := hashes(got); len(h) != 1 || h[0] != xdstest.KeyHash("sk-a") {
		t.Errorf("keys %v", h)
	}
	if k := got.Backends[0].Credential.Key.Reveal(); k != "sk-provider-0000-0123456789abcdef" {
		t.Errorf("credential key %q: the secret did not cross", k)
	}
	waitClient(t, e.srv, "extproc-a", func(c xdsserver.Client) bool { return c.AckedVersion == v1 && c.Kind == xdsserver.KindExtProc })

	// A key deleted and another added: one shard each, one apply each.
	v2, err := e.srv.Push(t.Context(), keyed("sk-b"))
	if err != nil {
		t.Fatal(err)
	}
	waitClient(t, e.srv, "extproc-a", func(c xdsserver.Client) bool { return c.AckedVersion == v2 })
	if h := hashes(a.last()); len(h) != 1 || h[0] != xdstest.KeyHash("sk-b") {
		t.Errorf("after the change keys = %v, want only sk-b", h)
	}
}

func TestApplyErrorIsNACKed(t *testing.T) {
	e := startServer(t)
	a := &applier{done: make(chan struct{}, 16)}
	runClient(t, e, "extproc-a", a)
	v1, err := e.srv.Push(t.Context(), keyed("sk-a"))
	if err != nil {
		t.Fatal(err)
	}
	waitApply(t, a)
	waitClient(t, e.srv, "extproc-a", func(c xdsserver.Client) bool { return c.AckedVersion == v1 })

	a.mu.Lock()
	a.fail = errors.New("compile: backend backend-0000: boom")
	a.mu.Unlock()
	v2, err := e.srv.Push(t.Context(), keyed("sk-a", "sk-b"))
	if err != nil {
		t.Fatal(err)
	}
	cl := waitClient(t, e.srv, "extproc-a", func(c xdsserver.Client) bool { return c.Nacked != nil })
	if cl.Nacked.Version != v2 || !strings.Contains(cl.Nacked.Message, "boom") || cl.AckedVersion != v1 {
		t.Errorf("client = %+v nack %+v; want v2 %q NACKed, v1 %q ACKed", cl, *cl.Nacked, v2, v1)
	}

	// The refused shard is not kept: when the next push changes only the
	// config, the replica applies it with the keys it last accepted.
	a.mu.Lock()
	a.fail = nil
	a.mu.Unlock()
	next := keyed("sk-a")
	next.Backends[0].BaseURL = "https://other.example.com/v1"
	// The server still holds sk-b's shard from v2 and will not resend
	// it, so push the original keys back: the replica must end with sk-a
	// only, and never have applied sk-b.
	if _, err := e.srv.Push(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	for {
		waitApply(t, a)
		if a.last().Backends[0].BaseURL == "https://other.example.com/v1" && len(a.last().Auth.Keys) == 1 {
			break
		}
	}
	for _, c := range a.applied {
		for _, h := range hashes(c) {
			if h == xdstest.KeyHash("sk-b") {
				t.Fatal("a refused key was applied")
			}
		}
	}
}

// BenchmarkPushToACK is the time from a one-key change at the issue's
// scale (2,000 backends, 10,000 keys) until a replica, compiling it into
// a real extproc.Server, has ACKed it:
// go test -run '^$' -bench PushToACK ./extproc/xdsclient
func BenchmarkPushToACK(b *testing.B) {
	s, err := xdsserver.New(xdsserver.Options{Envoy: xds.Options{ExtProcAddress: "127.0.0.1:1063"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	s.Register(g)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(xdsclient.MaxMessageBytes)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ep := extproc.New(extproc.Options{Logger: slog.New(slog.DiscardHandler)})
	defer ep.Close()
	c := xdsclient.New(xdsclient.Options{Conn: conn, NodeID: "r", Apply: ep.ApplyConfig, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	go c.Run(ctx)
	cfgs := [2]*config.Config{xdstest.LargeConfig(2000, 10000), xdstest.LargeConfig(2000, 10000)}
	cfgs[1].Auth.Keys = cfgs[1].Auth.Keys[1:]
	wait := func(v string) {
		for {
			for _, cl := range s.Clients() {
				if cl.AckedVersion == v {
					return
				}
			}
			select {
			case <-s.Changed():
			case <-ctx.Done():
				b.Fatal("no ACK")
			}
		}
	}
	v, err := s.Push(ctx, cfgs[1])
	if err != nil {
		b.Fatal(err)
	}
	wait(v)
	i := 0
	for b.Loop() {
		v, err := s.Push(ctx, cfgs[i%2])
		if err != nil {
			b.Fatal(err)
		}
		wait(v)
		i++
	}
}

// TestReconnects: when the controller's server goes away, the client
// reconnects (to its replacement here) and gets the current version,
// keeping the last config meanwhile.
func TestReconnects(t *testing.T) {
	s, err := xdsserver.New(xdsserver.Options{Envoy: xds.Options{ExtProcAddress: "127.0.0.1:1063"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lis *bufconn.Listener
	serve := func() *grpc.Server {
		g := grpc.NewServer()
		s.Register(g)
		l := bufconn.Listen(1 << 20)
		mu.Lock()
		lis = l
		mu.Unlock()
		go g.Serve(l)
		return g
	}
	g1 := serve()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			mu.Lock()
			l := lis
			mu.Unlock()
			return l.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a := &applier{done: make(chan struct{}, 16)}
	runClient(t, env{s, conn}, "extproc-a", a)
	v1, err := s.Push(t.Context(), keyed("sk-a"))
	if err != nil {
		t.Fatal(err)
	}
	waitClient(t, s, "extproc-a", func(c xdsserver.Client) bool { return c.AckedVersion == v1 })

	g1.Stop()
	ctx := ctxT(t)
	for len(s.Clients()) > 0 {
		select {
		case <-s.Changed():
		case <-ctx.Done():
			t.Fatal("stream never closed")
		}
	}
	v2, err := s.Push(t.Context(), keyed("sk-b"))
	if err != nil {
		t.Fatal(err)
	}
	g2 := serve()
	t.Cleanup(g2.Stop)
	waitClient(t, s, "extproc-a", func(c xdsserver.Client) bool { return c.AckedVersion == v2 })
	if h := hashes(a.last()); len(h) != 1 || h[0] != xdstest.KeyHash("sk-b") {
		t.Errorf("after reconnecting keys = %v, want sk-b", h)
	}
}

// TestLongNACKMessage: a long error (thousands of invalid keys) is cut to
// a few KB on a rune boundary, so the NACK still marshals and arrives.
func TestLongNACKMessage(t *testing.T) {
	e := startServer(t)
	a := &applier{done: make(chan struct{}, 16), fail: errors.New("x" + strings.Repeat("é", 5000))}
	runClient(t, e, "extproc-a", a)
	v, err := e.srv.Push(t.Context(), keyed("sk-a"))
	if err != nil {
		t.Fatal(err)
	}
	c := waitClient(t, e.srv, "extproc-a", func(c xdsserver.Client) bool { return c.Nacked != nil && c.Nacked.Version == v })
	if m := c.Nacked.Message; !utf8.ValidString(m) || len(m) > 4<<10+len("…") || !strings.HasPrefix(m, "xé") {
		t.Errorf("nack message of %d bytes, valid UTF-8 %v", len(m), utf8.ValidString(m))
	}
}
