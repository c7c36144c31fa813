package xds

import (
	"errors"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	skipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/matcher/action/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyheadermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weir-ai/weir/config"
)

func noEnv(string) (string, bool) { return "", false }

func mustParse(t testing.TB, y string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(y), noEnv)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	return c
}

var testOpts = Options{ExtProcAddress: "127.0.0.1:1063", MessageTimeout: 30 * time.Second}

// validateDeep runs ValidateAll on m and on every message packed in an Any
// inside it, which the generated validators do not unpack themselves.
func validateDeep(t testing.TB, m proto.Message) {
	t.Helper()
	if err := ValidateDeep(m); err != nil {
		t.Fatalf("%s: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
}

func validateResources(t testing.TB, res *Resources) {
	t.Helper()
	for _, l := range res.Listeners {
		validateDeep(t, l)
	}
	for _, r := range res.Routes {
		validateDeep(t, r)
	}
	for _, c := range res.Clusters {
		validateDeep(t, c)
	}
}

func TestBuildValidates(t *testing.T) {
	dflt, err := config.Parse(config.DefaultYAML(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  *config.Config
		opts Options
	}{
		{"default config", dflt, testOpts},
		{"unix extproc", dflt, Options{ExtProcAddress: "unix:///run/weir/extproc.sock"}},
		{"dns extproc with admin", dflt, Options{ExtProcAddress: "weir-extproc.weir.svc:1063", AdminPort: 9901, ExtProcTLS: &ExtProcTLS{CertFile: "/c.pem", KeyFile: "/k.pem", CAFile: "/ca.pem"}}},
		{"insecure dns extproc", dflt, Options{ExtProcAddress: "weir-extproc.weir.svc:1063", InsecureExtProc: true}},
		{"localhost extproc", dflt, Options{ExtProcAddress: "localhost:1063"}},
		{"ipv6 loopback extproc", dflt, Options{ExtProcAddress: "[::1]:1063"}},
		{"rds", dflt, Options{ExtProcAddress: "127.0.0.1:1063", RDS: true}},
		{"tls backend", mustParse(t, `
version: weir.dev/v1alpha1
backends:
  - {name: openai, provider: openai, base_url: "https://api.openai.com/v1"}
  - {name: ipv6, provider: openai, base_url: "http://[::1]:9000"}
`), testOpts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Build(tt.cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			validateResources(t, res)
			b, err := Bootstrap(tt.cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			validateDeep(t, b)
		})
	}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	cfg := mustParse(t, "version: weir.dev/v1alpha1\n")
	tests := []struct {
		name string
		opts Options
	}{
		{"no extproc", Options{}},
		{"extproc without port", Options{ExtProcAddress: "localhost"}},
		{"relative unix path", Options{ExtProcAddress: "unix://run/x.sock"}},
		{"port out of range", Options{ExtProcAddress: "127.0.0.1:1063", ListenPort: 70000}},
		{"timeout too long", Options{ExtProcAddress: "127.0.0.1:1063", MessageTimeout: 2 * time.Hour}},
		{"plaintext non-loopback ip", Options{ExtProcAddress: "10.0.0.5:1063"}},
		{"plaintext dns name", Options{ExtProcAddress: "weir-extproc.weir.svc:1063"}},
		{"tls without key", Options{ExtProcAddress: "10.0.0.5:1063", ExtProcTLS: &ExtProcTLS{CertFile: "/c.pem", CAFile: "/ca.pem"}}},
		{"tls without ca", Options{ExtProcAddress: "127.0.0.1:1063", ExtProcTLS: &ExtProcTLS{CertFile: "/c.pem", KeyFile: "/k.pem"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(cfg, tt.opts); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Build: got %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func unpack[T proto.Message](t *testing.T, a *anypb.Any) T {
	t.Helper()
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m.(T)
	if !ok {
		t.Fatalf("got %T", m)
	}
	return v
}

func hcmOf(t *testing.T, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	return unpack[*hcmv3.HttpConnectionManager](t, l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
}

// TestBuildShape pins the parts of DESIGN.md the extproc relies on.
func TestBuildShape(t *testing.T) {
	cfg := mustParse(t, `
version: weir.dev/v1alpha1
listener: {max_body_bytes: 1000}
backends:
  - {name: a, provider: openai, base_url: "https://api.example.com/v1", timeout: 42s}
  - {name: b, provider: openai, base_url: "http://10.0.0.1"}
`)
	res, err := Build(cfg, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	hcm := hcmOf(t, res.Listeners[0])
	var names []string
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	if got, want := strings.Join(names, ","), FilterExtProc+","+FilterRouter; got != want {
		t.Errorf("filters = %s, want %s", got, want)
	}
	// Client x-weir-* headers go before the route is picked (W5).
	early := hcm.GetEarlyHeaderMutationExtensions()
	if len(early) != 1 || early[0].GetName() != EarlyHeaderMutation {
		t.Fatalf("early header mutations = %v", early)
	}
	em := unpack[*earlyheadermutationv3.HeaderMutation](t, early[0].GetTypedConfig())
	if em.GetMutations()[0].GetRemoveOnMatch().GetKeyMatcher().GetPrefix() != config.InternalHeaderPrefix {
		t.Errorf("early mutation = %v", em)
	}
	ep := unpack[*extprocv3.ExternalProcessor](t, hcm.GetHttpFilters()[0].GetTypedConfig())
	pm := ep.GetProcessingMode()
	if pm.GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND || pm.GetRequestBodyMode() != extprocv3.ProcessingMode_BUFFERED ||
		pm.GetResponseHeaderMode() != extprocv3.ProcessingMode_SEND || pm.GetResponseBodyMode() != extprocv3.ProcessingMode_BUFFERED {
		t.Errorf("router processing mode = %v", pm)
	}
	if !ep.GetAllowModeOverride() || ep.GetFailureModeAllow() {
		t.Errorf("allow_mode_override/failure_mode_allow = %v/%v", ep.GetAllowModeOverride(), ep.GetFailureModeAllow())
	}
	if md := ep.GetGrpcService().GetInitialMetadata(); len(md) != 1 || md[0].GetKey() != config.FilterLevelHeader || md[0].GetValue() != config.FilterLevelRouter {
		t.Errorf("initial metadata = %v", md)
	}
	if got := res.Listeners[0].GetPerConnectionBufferLimitBytes().GetValue(); got != 1000+bufferHeadroom {
		t.Errorf("listener buffer limit = %d", got)
	}

	if !ep.GetMutationRules().GetAllowAllRouting().GetValue() || len(ep.GetRequestAttributes()) != 0 {
		t.Errorf("router mutation rules / request attributes = %v / %v", ep.GetMutationRules(), ep.GetRequestAttributes())
	}

	routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	if len(routes) != 3 {
		t.Fatalf("got %d routes", len(routes))
	}
	ra := routes[0].GetRoute()
	if ra.GetCluster() != config.ClusterName("a") || ra.GetTimeout().AsDuration() != 42*time.Second {
		t.Errorf("backend route a = %v", ra)
	}
	if hm := routes[0].GetMatch().GetHeaders()[0]; hm.GetName() != config.HeaderBackend || hm.GetStringMatch().GetExact() != "a" {
		t.Errorf("backend header matcher = %v", hm)
	}
	if routes[2].GetDirectResponse().GetStatus() != 404 {
		t.Errorf("catch-all = %v", routes[2])
	}
	if !proto.Equal(hcm.GetRouteConfig(), res.Routes[0]) {
		t.Error("inline route config differs from Routes[0]")
	}

	byName := map[string]*clusterv3.Cluster{}
	for _, c := range res.Clusters {
		byName[c.GetName()] = c
	}
	a, b := byName[config.ClusterName("a")], byName[config.ClusterName("b")]
	if a.GetType() != clusterv3.Cluster_LOGICAL_DNS || b.GetType() != clusterv3.Cluster_STATIC {
		t.Errorf("discovery types = %v, %v", a.GetType(), b.GetType())
	}
	if port := a.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); port != 443 {
		t.Errorf("https default port = %d", port)
	}
	tc := unpack[*tlsv3.UpstreamTlsContext](t, a.GetTransportSocket().GetTypedConfig())
	if tc.GetSni() != "api.example.com" {
		t.Errorf("sni = %q", tc.GetSni())
	}
	if b.GetTransportSocket() != nil {
		t.Error("plain http backend has a transport socket")
	}
	md := b.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetMetadata().GetFilterMetadata()[config.MetadataNamespace]
	if md.GetFields()[config.MetaBackend].GetStringValue() != "b" {
		t.Errorf("endpoint metadata = %v", md)
	}
	po := unpack[*upstreamhttpv3.HttpProtocolOptions](t, b.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsKey])
	names = names[:0]
	for _, f := range po.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	if got, want := strings.Join(names, ","), MatchDelegate+","+FilterUpstreamCodec; got != want {
		t.Errorf("upstream filters = %s, want %s", got, want)
	}
	// The upstream ext_proc is skipped while x-weir-backend names this
	// cluster's backend.
	wm := unpack[*matchingv3.ExtensionWithMatcher](t, po.GetHttpFilters()[0].GetTypedConfig())
	fm := wm.GetXdsMatcher().GetMatcherList().GetMatchers()[0]
	sp := fm.GetPredicate().GetSinglePredicate()
	in := unpack[*matcherv3.HttpRequestHeaderMatchInput](t, sp.GetInput().GetTypedConfig())
	if in.GetHeaderName() != config.HeaderBackend || sp.GetValueMatch().GetExact() != "b" {
		t.Errorf("skip predicate = %v", sp)
	}
	if _, ok := fm.GetOnMatch().GetAction().GetTypedConfig().UnmarshalNew(); ok != nil || !fm.GetOnMatch().GetAction().GetTypedConfig().MessageIs(&skipv3.SkipFilter{}) {
		t.Errorf("on match = %v", fm.GetOnMatch())
	}
	up := unpack[*extprocv3.ExternalProcessor](t, wm.GetExtensionConfig().GetTypedConfig())
	if !up.GetMutationRules().GetAllowAllRouting().GetValue() || up.GetGrpcService().GetInitialMetadata()[0].GetValue() != config.FilterLevelUpstream ||
		up.GetProcessingMode().GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND {
		t.Errorf("upstream ext_proc = %v", up)
	}
	ext := byName[ExtProcCluster]
	if ext == nil || ext.GetType() != clusterv3.Cluster_STATIC {
		t.Fatalf("extproc cluster = %v", ext)
	}
}
