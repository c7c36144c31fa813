package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/test/redistest"
)

// serve starts srv on an in-memory listener and returns a client.
func serve(tb testing.TB, srv extprocv3.ExternalProcessorServer) extprocv3.ExternalProcessorClient {
	tb.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn)
}

// configs are the bench configs the tests cover: every default one.
var configs = []string{"openai", "anthropic", "bedrock", "gemini", "keys-memory", "keys-redis"}

func setup(tb testing.TB, name string, strict bool) (*Driver, *Profile) {
	tb.Helper()
	if name == "keys-redis" && strict {
		// Weir's limits store; the null floor needs none.
		tb.Setenv("WEIR_BENCH_REDIS", redistest.Start(tb).Addr)
	}
	p, err := LoadProfile(name+".yaml", "gpt-4o-mini")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ShapeFromXDS(p.Config, p.Backend)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := NewDriver(s, p, strict)
	if err != nil {
		tb.Fatal(err)
	}
	return d, p
}

func weirClient(tb testing.TB, p *Profile) extprocv3.ExternalProcessorClient {
	tb.Helper()
	return serve(tb, weirServer(tb, p))
}

// weirServer is Weir's extproc server loaded with p's config.
func weirServer(tb testing.TB, p *Profile) extprocv3.ExternalProcessorServer {
	tb.Helper()
	raw, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		tb.Fatal(err)
	}
	srv := extproc.New(extproc.Options{})
	if err := srv.LoadConfig(raw, os.LookupEnv); err != nil {
		tb.Fatal(err)
	}
	return srv
}

// skipUnsupported skips while a provider's translator is still a stub on
// this branch (it answers the upstream request with "unsupported").
func skipUnsupported(tb testing.TB, err error) {
	var be *Error
	if errors.As(err, &be) && strings.HasPrefix(be.Key, "upstream request_body: immediate response") && strings.Contains(be.Detail, "unsupported") {
		tb.Skipf("translator not implemented on this branch: %v", err)
	}
}

func TestShapeFromXDS(t *testing.T) {
	for _, name := range configs {
		d, p := setup(t, name, false)
		s := d.Shape
		if s.Router.InitialMetadata[config.FilterLevelHeader] != config.FilterLevelRouter ||
			s.Upstream.InitialMetadata[config.FilterLevelHeader] != config.FilterLevelUpstream {
			t.Errorf("%s: filter levels %v / %v", name, s.Router.InitialMetadata, s.Upstream.InitialMetadata)
		}
		// Router level: headers SEND, bodies BUFFERED both ways.
		if got := slices.Concat(s.Router.RequestPhases, s.Router.ResponsePhases); !slices.Equal(got, []Phase{RequestHeaders, RequestBody, ResponseHeaders, ResponseBody}) {
			t.Errorf("%s: router phases %v", name, got)
		}
		if len(s.Router.RequestAttributes) != 0 || !slices.Equal(s.Router.ResponseAttributes, []string{config.AttrHostBackend}) {
			t.Errorf("%s: router attributes %v / %v", name, s.Router.RequestAttributes, s.Router.ResponseAttributes)
		}
		// Upstream level: would get headers then body, behind a skip on
		// x-weir-backend == this backend.
		if got := slices.Concat(s.Upstream.RequestPhases, s.Upstream.ResponsePhases); !slices.Equal(got, []Phase{RequestHeaders, RequestBody}) {
			t.Errorf("%s: upstream phases %v", name, got)
		}
		if want := (SkipMatcher{Header: config.HeaderBackend, Exact: p.Backend}); s.UpstreamSkip == nil || *s.UpstreamSkip != want {
			t.Errorf("%s: upstream skip %+v, want %+v", name, s.UpstreamSkip, want)
		}
		if !slices.Contains(s.Upstream.ForwardingNamespaces, config.MetadataNamespace) || !slices.Contains(s.Router.ReceivingNamespaces, config.MetadataNamespace) {
			t.Errorf("%s: namespaces %+v %+v", name, s.Router, s.Upstream)
		}
		// The router reply routes, so the upstream filter is skipped: four
		// messages on one stream.
		if d.UpstreamRuns() {
			t.Errorf("%s: upstream filter runs", name)
		}
		sz := d.Sizes()
		if len(sz) != 4 || slices.ContainsFunc(sz, func(m MessageSize) bool { return m.Filter != "router" }) {
			t.Errorf("%s: sizes %v", name, sz)
		}
		if n := len(p.RequestBody); n < 1300 || n > 1700 {
			t.Errorf("request body is %d bytes, want about 1.5 KB", n)
		}
	}
}

func TestDriverAgainstWeir(t *testing.T) {
	for _, name := range configs {
		t.Run(name, func(t *testing.T) {
			d, p := setup(t, name, true)
			c := weirClient(t, p)
			err := d.Do(context.Background(), c, RequestID(1))
			skipUnsupported(t, err)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNullFloor(t *testing.T) {
	for _, name := range configs {
		d, _ := setup(t, name, false)
		c := serve(t, NullServer{})
		var seq atomic.Uint64
		r := Load(context.Background(), d, []extprocv3.ExternalProcessorClient{c}, 4, time.Minute, 40, 5*time.Second, &seq)
		if r.Errors != 0 || r.Requests != 40 {
			t.Fatalf("%s: %d requests, %d errors: %v", name, r.Requests, r.Errors, r.ErrorSample)
		}
	}
}

func TestProfiles(t *testing.T) {
	for _, name := range []string{"keys-memory", "keys-redis"} {
		_, p := setup(t, name, false)
		if !p.VirtualKey || p.ClientKey == ClientKey || p.LimitsStore != strings.TrimPrefix(name, "keys-") {
			t.Errorf("%s: virtual key %v, client key %q, store %q", name, p.VirtualKey, p.ClientKey, p.LimitsStore)
		}
	}
	_, p := setup(t, "bedrock", false)
	if !p.SigV4 || p.UpstreamPath != "/model/amazon.nova-lite-v1%3A0/converse" {
		t.Errorf("bedrock: sigv4 %v, path %q", p.SigV4, p.UpstreamPath)
	}
	_, p = setup(t, "gemini", false)
	if p.UpstreamPath != "/v1beta/models/gemini-2.5-flash:generateContent" || p.Credential != "gemini-bench-key" {
		t.Errorf("gemini: path %q", p.UpstreamPath)
	}
	// A config with keys must name the key the bench presents, and the
	// key must be one of them.
	raw, err := os.ReadFile("keys-memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	noKey := strings.ReplaceAll(string(raw), clientKeyDirective, "# ")
	if _, err := ParseProfile("x.yaml", []byte(noKey), "gpt-4o-mini"); err == nil || !strings.Contains(err.Error(), "client-key") {
		t.Errorf("config without the directive: %v", err)
	}
	wrong := strings.Replace(string(raw), "sk-weir-W", "sk-weir-X", 1)
	if _, err := ParseProfile("x.yaml", []byte(wrong), "gpt-4o-mini"); err == nil || !strings.Contains(err.Error(), "not in auth.keys") {
		t.Errorf("config with a wrong key: %v", err)
	}
}

// A strict driver must reject the null server's empty replies, or the
// Weir numbers could silently be numbers for errors.
func TestStrictRejectsNull(t *testing.T) {
	d, _ := setup(t, "openai", true)
	err := d.Do(context.Background(), serve(t, NullServer{}), RequestID(1))
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(be.Key, config.HeaderBackend) {
		t.Fatalf("got %v, want a wrong %s error", err, config.HeaderBackend)
	}
}

// BenchmarkRouterRequestPath sends one full request's messages (router
// request headers and body, router response headers and body; the upstream
// filter is skipped by its match_delegate) through Weir's server in
// process over bufconn. Allocations include the
// client side of the in-process gRPC connection.
func BenchmarkRouterRequestPath(b *testing.B) {
	for _, name := range configs {
		b.Run(name, func(b *testing.B) {
			d, p := setup(b, name, true)
			c := weirClient(b, p)
			ctx := context.Background()
			if err := d.Do(ctx, c, RequestID(0)); err != nil {
				skipUnsupported(b, err)
				b.Fatal(err)
			}
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				if err := d.Do(ctx, c, RequestID(n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
