package xdsserver

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/wire"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/test/xdstest"
)

var envoyOpts = xds.Options{ExtProcAddress: "127.0.0.1:1063"}

func fixedClock() time.Time { return time.Unix(1_800_000_000, 0) }

// start serves a new Server on an in-memory listener and returns it with
// a connection to it.
func start(t *testing.T) (*Server, *grpc.ClientConn) {
	t.Helper()
	s, err := New(Options{Envoy: envoyOpts, Logger: slog.New(slog.DiscardHandler), Clock: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	return s, xdstest.Serve(t, s.Register)
}

func ctxT(t *testing.T) context.Context {
	// A bound on a hung test, not a timing assertion: every wait below is
	// on a response or on Changed.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, conn *grpc.ClientConn, id, cluster string) *xdstest.Client {
	t.Helper()
	c, err := xdstest.Dial(ctxT(t), conn, &corev3.Node{Id: id, Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// extproc subscribes like a replica and returns its first responses.
func extproc(t *testing.T, conn *grpc.ClientConn, id string) (*xdstest.Client, *discoveryv3.DiscoveryResponse, *discoveryv3.DiscoveryResponse) {
	t.Helper()
	c := dial(t, conn, id, wire.NodeCluster)
	for _, typ := range []string{wire.ConfigType, wire.KeyShardType} {
		if err := c.Subscribe(typ); err != nil {
			t.Fatal(err)
		}
	}
	return c, next(t, c, wire.ConfigType), next(t, c, wire.KeyShardType)
}

func next(t *testing.T, c *xdstest.Client, typ string) *discoveryv3.DiscoveryResponse {
	t.Helper()
	r, err := c.Next(ctxT(t), typ)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ack(t *testing.T, c *xdstest.Client, rs ...*discoveryv3.DiscoveryResponse) {
	t.Helper()
	for _, r := range rs {
		if err := c.ACK(r); err != nil {
			t.Fatal(err)
		}
	}
}

// waitClients waits, on Changed, until Clients satisfies ok.
func waitClients(t *testing.T, s *Server, ok func([]Client) bool) []Client {
	t.Helper()
	ctx := ctxT(t)
	for {
		cs := s.Clients()
		if ok(cs) {
			return cs
		}
		select {
		case <-s.Changed():
		case <-ctx.Done():
			t.Fatalf("clients never reached the wanted state; last %+v", cs)
		}
	}
}

func client(cs []Client, node string) Client {
	for _, c := range cs {
		if c.Node == node {
			return c
		}
	}
	return Client{}
}

func typeURLs(r *discoveryv3.DiscoveryResponse) []string {
	var out []string
	for _, a := range r.GetResources() {
		out = append(out, a.GetTypeUrl())
	}
	return out
}

func keysIn(t *testing.T, r *discoveryv3.DiscoveryResponse) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, a := range r.GetResources() {
		b, err := wire.Unpack(a)
		if err != nil {
			t.Fatal(err)
		}
		_, keys, err := wire.DecodeShard(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			out[k.Hash] = true
		}
	}
	return out
}

// backendURL decodes a config response's first backend URL.
func backendURL(t *testing.T, r *discoveryv3.DiscoveryResponse) string {
	t.Helper()
	if len(r.GetResources()) != 1 {
		t.Fatalf("config response with %d resources", len(r.GetResources()))
	}
	b, err := wire.Unpack(r.GetResources()[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.DecodeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return c.Backends[0].BaseURL
}

func baseConfig(keys ...string) *config.Config {
	c := xdstest.LargeConfig(2, 0)
	for _, k := range keys {
		c.Auth.Keys = append(c.Auth.Keys, config.KeyConfig{Hash: xdstest.KeyHash(k)})
	}
	return c
}

func push(t *testing.T, s *Server, c *config.Config) string {
	t.Helper()
	v, err := s.Push(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEnvoyGetsBuildOutput(t *testing.T) {
	s, conn := start(t)
	cfg := baseConfig("sk-a")
	v := push(t, s, cfg)
	opts := envoyOpts
	opts.RDS = true
	want, err := xds.Build(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := dial(t, conn, "envoy-1", "weir-envoy")
	subs := []struct {
		typ   string
		names []string
		want  []proto.Message
	}{
		{resourcev3.ClusterType, nil, msgs(want.Clusters)},
		{resourcev3.ListenerType, nil, msgs(want.Listeners)},
		{resourcev3.RouteType, []string{xds.RouteConfigName}, msgs(want.Routes)},
	}
	for _, sub := range subs {
		if err := e.Subscribe(sub.typ, sub.names...); err != nil {
			t.Fatal(err)
		}
		r := next(t, e, sub.typ)
		if r.GetVersionInfo() != v {
			t.Errorf("%s version %q, want the push's %q", sub.typ, r.GetVersionInfo(), v)
		}
		got := unpackAll(t, r)
		sortByName(got)
		wantSorted := slices.Clone(sub.want)
		sortByName(wantSorted)
		if len(got) != len(wantSorted) {
			t.Fatalf("%s: %d resources, want %d", sub.typ, len(got), len(wantSorted))
		}
		for i := range got {
			if !proto.Equal(got[i], wantSorted[i]) {
				t.Errorf("%s[%d] differs from xds.Build", sub.typ, i)
			}
			if err := validateDeep(got[i]); err != nil {
				t.Errorf("%s[%d]: %v", sub.typ, i, err)
			}
		}
		ack(t, e, r)
	}
	cs := waitClients(t, s, func(cs []Client) bool { return client(cs, "envoy-1").AckedVersion == v })
	if c := client(cs, "envoy-1"); c.Kind != KindEnvoy || c.Nacked != nil {
		t.Errorf("client = %+v", c)
	}
}

func msgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

func unpackAll(t *testing.T, r *discoveryv3.DiscoveryResponse) []proto.Message {
	t.Helper()
	var out []proto.Message
	for _, a := range r.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func sortByName(ms []proto.Message) {
	name := func(m proto.Message) string {
		return m.ProtoReflect().Get(m.ProtoReflect().Descriptor().Fields().ByName("name")).String()
	}
	slices.SortFunc(ms, func(a, b proto.Message) int {
		switch {
		case name(a) < name(b):
			return -1
		case name(a) > name(b):
			return 1
		}
		return 0
	})
}

// TestKeyChangesReachEveryReplica: two replicas get a new key and a
// deleted key's revocation, each time as the one changed shard.
func TestKeyChangesReachEveryReplica(t *testing.T) {
	s, conn := start(t)
	v1 := push(t, s, baseConfig("sk-a"))
	a, ac, ak := extproc(t, conn, "extproc-a")
	b, bc, bk := extproc(t, conn, "extproc-b")
	for _, r := range []*discoveryv3.DiscoveryResponse{ac, bc} {
		if len(r.GetResources()) != 1 || r.GetResources()[0].GetTypeUrl() != wire.ConfigType {
			t.Fatalf("config response: %v", typeURLs(r))
		}
	}
	for _, r := range []*discoveryv3.DiscoveryResponse{ak, bk} {
		if len(r.GetResources()) != wire.NumShards {
			t.Fatalf("initial key response has %d shards, want all %d", len(r.GetResources()), wire.NumShards)
		}
		if got := keysIn(t, r); len(got) != 1 || !got[xdstest.KeyHash("sk-a")] {
			t.Fatalf("initial keys %v", got)
		}
	}
	ack(t, a, ac, ak)
	ack(t, b, bc, bk)
	waitClients(t, s, func(cs []Client) bool {
		return client(cs, "extproc-a").AckedVersion == v1 && client(cs, "extproc-b").AckedVersion == v1
	})

	steps := []struct {
		name string
		keys []string
		add  string // the key whose shard must be the only one sent
		want bool   // whether that key is in the shard sent
	}{
		{"add a key", []string{"sk-a", "sk-b"}, "sk-b", true},
		{"delete a key", []string{"sk-b"}, "sk-a", false},
	}
	url := baseConfig().Backends[0].BaseURL
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cfg := baseConfig(st.keys...)
			cfg.Backends[0].BaseURL = url
			v := push(t, s, cfg)
			for _, c := range []*xdstest.Client{a, b} {
				r := next(t, c, wire.KeyShardType)
				if len(r.GetResources()) != 1 {
					t.Fatalf("%d shards sent for a one-key change, want 1", len(r.GetResources()))
				}
				if got := keysIn(t, r); got[xdstest.KeyHash(st.add)] != st.want {
					t.Errorf("shard sent has %v; want %s present=%v", got, st.add, st.want)
				}
				ack(t, c, r)
			}
			waitClients(t, s, func(cs []Client) bool {
				return client(cs, "extproc-a").AckedVersion == v && client(cs, "extproc-b").AckedVersion == v
			})
			// The key change sent no config resource: after a config-only
			// push, the next config response is that push's.
			url = "https://" + st.name[:3] + ".example.com/v1"
			sentinel := baseConfig(st.keys...)
			sentinel.Backends[0].BaseURL = url
			push(t, s, sentinel)
			for _, c := range []*xdstest.Client{a, b} {
				r := next(t, c, wire.ConfigType)
				if got := backendURL(t, r); got != sentinel.Backends[0].BaseURL {
					t.Errorf("config response carries %q; the key push sent a config resource", got)
				}
				ack(t, c, r)
			}
		})
	}
}

func TestNACKShowsInClients(t *testing.T) {
	s, conn := start(t)
	v1 := push(t, s, baseConfig("sk-a"))
	a, ac, ak := extproc(t, conn, "extproc-a")
	ack(t, a, ac, ak)
	waitClients(t, s, func(cs []Client) bool { return client(cs, "extproc-a").AckedVersion == v1 })

	bad := baseConfig("sk-a")
	bad.Backends[0].BaseURL = "https://changed.example.com/v1"
	v2 := push(t, s, bad)
	r := next(t, a, wire.ConfigType)
	if err := a.NACK(r, "compile: backend openai: boom"); err != nil {
		t.Fatal(err)
	}
	cs := waitClients(t, s, func(cs []Client) bool { return client(cs, "extproc-a").Nacked != nil })
	c := client(cs, "extproc-a")
	if want := (Nack{Version: v2, Message: "compile: backend openai: boom"}); *c.Nacked != want {
		t.Errorf("nack = %+v, want %+v", *c.Nacked, want)
	}
	if c.AckedVersion != v1 {
		t.Errorf("acked = %q, want the previous %q", c.AckedVersion, v1)
	}

	// A later push the replica accepts clears the NACK.
	v3 := push(t, s, baseConfig("sk-a"))
	ack(t, a, next(t, a, wire.ConfigType))
	cs = waitClients(t, s, func(cs []Client) bool { return client(cs, "extproc-a").AckedVersion == v3 })
	if c := client(cs, "extproc-a"); c.Nacked != nil {
		t.Errorf("nack kept after an ACK of a newer version: %+v", c.Nacked)
	}
}

func TestReconnectGetsCurrentVersion(t *testing.T) {
	s, conn := start(t)
	push(t, s, baseConfig("sk-a"))
	a, _, _ := extproc(t, conn, "extproc-a")
	a.Close()
	waitClients(t, s, func(cs []Client) bool { return len(cs) == 0 })

	v2 := push(t, s, baseConfig("sk-b"))
	a2, c, k := extproc(t, conn, "extproc-a")
	if got := keysIn(t, k); len(got) != 1 || !got[xdstest.KeyHash("sk-b")] {
		t.Errorf("reconnected replica got keys %v, want only sk-b", got)
	}
	ack(t, a2, c, k)
	waitClients(t, s, func(cs []Client) bool { return client(cs, "extproc-a").AckedVersion == v2 })
}

func TestPushErrorKeepsPreviousVersion(t *testing.T) {
	s, conn := start(t)
	v1 := push(t, s, baseConfig("sk-a"))
	a, ac, ak := extproc(t, conn, "extproc-a")
	ack(t, a, ac, ak)

	tests := []struct {
		name string
		cfg  func() *config.Config
	}{
		{"bad key hash", func() *config.Config {
			c := baseConfig("sk-a")
			c.Auth.Keys = append(c.Auth.Keys, config.KeyConfig{Hash: "not-hex"})
			return c
		}},
		{"backend Envoy cannot route", func() *config.Config {
			c := baseConfig("sk-a")
			c.Backends[0].BaseURL = "ftp://x"
			return c
		}},
		{"nil config", func() *config.Config { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := s.Push(t.Context(), tt.cfg())
			if err == nil {
				t.Fatalf("push succeeded with version %q", v)
			}
			if s.Version() != v1 {
				t.Errorf("version = %q after a failed push, want %q", s.Version(), v1)
			}
		})
	}
	// The same config again is no new version and sends nothing.
	if v := push(t, s, baseConfig("sk-a")); v != v1 {
		t.Errorf("unchanged push gave version %q, want %q", v, v1)
	}
	// Pushed after the failures: the first response the replica sees.
	v2 := push(t, s, baseConfig("sk-a", "sk-b"))
	r := next(t, a, wire.KeyShardType)
	if got := keysIn(t, r); !got[xdstest.KeyHash("sk-b")] {
		t.Errorf("first response after failed pushes has %v", got)
	}
	if n := a.Pending(wire.ConfigType); n != 0 {
		t.Errorf("%d config responses from failed or unchanged pushes", n)
	}
	if v2 == v1 {
		t.Error("changed push kept the version")
	}
}

// TestInitialSyncSizes logs the largest DiscoveryResponse of a full sync
// at the scale; no response may exceed 4 MiB:
// go test -run TestInitialSyncSizes -v ./controller/xdsserver
func TestInitialSyncSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	s, conn := start(t)
	push(t, s, xdstest.LargeConfig(2000, 10000))
	e := dial(t, conn, "envoy-1", "weir-envoy")
	sizes := map[string]int{}
	for _, sub := range []struct {
		typ   string
		names []string
	}{{resourcev3.ClusterType, nil}, {resourcev3.ListenerType, nil}, {resourcev3.RouteType, []string{xds.RouteConfigName}}} {
		if err := e.Subscribe(sub.typ, sub.names...); err != nil {
			t.Fatal(err)
		}
		sizes[sub.typ] = proto.Size(next(t, e, sub.typ))
	}
	_, c, k := extproc(t, conn, "extproc-a")
	sizes[wire.ConfigType], sizes[wire.KeyShardType] = proto.Size(c), proto.Size(k)
	for typ, n := range sizes {
		t.Logf("2000 backends/models, 10000 keys: %s response %d bytes", typ, n)
		if n > 4<<20 {
			t.Errorf("%s response is %d bytes, over 4 MiB", typ, n)
		}
	}
}

// validateDeep runs ValidateAll on m and every message packed in an Any
// inside it (copied from controller/xds's test, which is in another
// package's test files).
func validateDeep(m proto.Message) error { return xds.ValidateDeep(m) }

// TestDeltaClientsTracked: a delta ADS client (Envoy's DELTA_GRPC) gets
// the resources by name and its ACK counts like a state-of-the-world one.
func TestDeltaClientsTracked(t *testing.T) {
	s, conn := start(t)
	v := push(t, s, baseConfig("sk-a"))
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "envoy-delta", Cluster: "weir-envoy"}
	types := []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.RouteType}
	for i, typ := range types {
		r := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			r.Node = node
		}
		if typ == resourcev3.RouteType {
			r.ResourceNamesSubscribe = []string{xds.RouteConfigName}
		}
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{}
	for range types {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range r.GetResources() {
			got[r.GetTypeUrl()] = append(got[r.GetTypeUrl()], res.GetName())
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got[resourcev3.ClusterType]) != 3 || len(got[resourcev3.ListenerType]) != 1 || len(got[resourcev3.RouteType]) != 1 {
		t.Errorf("delta resources %v", got)
	}
	waitClients(t, s, func(cs []Client) bool { return client(cs, "envoy-delta").AckedVersion == v })
}

func TestNewRefusesBadOptions(t *testing.T) {
	_, err := New(Options{Envoy: xds.Options{}})
	if !errors.Is(err, xds.ErrInvalidOptions) {
		t.Fatalf("err = %v, want ErrInvalidOptions (no extproc address)", err)
	}
}

// BenchmarkPushOneKey is the controller's cost of a one-key change at the
// issue's scale (2,000 backends, 10,000 keys): render, validate, encode,
// diff and serve. go test -run '^$' -bench PushOneKey ./controller/xdsserver
func BenchmarkPushOneKey(b *testing.B) {
	s, err := New(Options{Envoy: envoyOpts, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	cfgs := [2]*config.Config{xdstest.LargeConfig(2000, 10000), xdstest.LargeConfig(2000, 10000)}
	cfgs[1].Auth.Keys = cfgs[1].Auth.Keys[1:]
	i := 0
	for b.Loop() {
		if _, err := s.Push(b.Context(), cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestEnvoyWithoutRoutesIsNotSynced: a client is synced only once it was
// sent, and ACKed, every type it needs. An Envoy that ACKed its listeners
// and clusters but has not yet been sent the routes its listener names
// (it subscribes to RDS only once the listener arrives) has not applied
// the push: its listener is still warming. Counting it as synced would
// mark objects Programmed before any Envoy can serve them. The window is
// between two requests of one stream, so the rule is tested on the
// stream's state directly.
func TestEnvoyWithoutRoutesIsNotSynced(t *testing.T) {
	s := &Server{history: []pushed{{version: "p1", envoy: "e1", cfg: "c1", keys: "k1"}}}
	at := func(v string) sentResponse { return sentResponse{version: v} }
	for _, tt := range []struct {
		name  string
		kind  string
		sent  []string
		acked map[string]sentResponse
		want  string
	}{
		{"envoy: listeners and clusters only", KindEnvoy, []string{resourcev3.ListenerType, resourcev3.ClusterType},
			map[string]sentResponse{resourcev3.ListenerType: at("e1"), resourcev3.ClusterType: at("e1")}, ""},
		{"envoy: routes sent, not ACKed", KindEnvoy, []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.RouteType},
			map[string]sentResponse{resourcev3.ListenerType: at("e1"), resourcev3.ClusterType: at("e1")}, ""},
		{"envoy: all three ACKed", KindEnvoy, []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.RouteType},
			map[string]sentResponse{resourcev3.ListenerType: at("e1"), resourcev3.ClusterType: at("e1"), resourcev3.RouteType: at("e1")}, "p1"},
		{"envoy: clusters only (no listener yet)", KindEnvoy, []string{resourcev3.ClusterType},
			map[string]sentResponse{resourcev3.ClusterType: at("e1")}, "p1"},
		{"extproc: both types", KindExtProc, []string{wire.ConfigType, wire.KeyShardType},
			map[string]sentResponse{wire.ConfigType: at("c1"), wire.KeyShardType: at("k1")}, "p1"},
		// A replica (re)connecting gets the two types on independent
		// watches: ACKing the config before the key shards were even
		// sent is not having the push (its keys may be the old ones).
		{"extproc: config only, shards not sent yet", KindExtProc, []string{wire.ConfigType},
			map[string]sentResponse{wire.ConfigType: at("c1")}, ""},
		{"extproc: shards only, config not sent yet", KindExtProc, []string{wire.KeyShardType},
			map[string]sentResponse{wire.KeyShardType: at("k1")}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &stream{kind: tt.kind, sent: map[string]map[string]sentResponse{}, acked: tt.acked}
			for _, typ := range tt.sent {
				st.sent[typ] = map[string]sentResponse{"n": {}}
			}
			if got := s.ackedLocked(st); got != tt.want {
				t.Fatalf("acked = %q, want %q", got, tt.want)
			}
		})
	}
}
