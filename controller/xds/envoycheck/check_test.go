package envoycheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlymutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

// ---- builders ----

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func hf(name string, m proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(m)}}
}

// delegated wraps m in the match_delegate filter.
func delegated(name string, m proto.Message) *hcmv3.HttpFilter {
	return hf(name, &matchingv3.ExtensionWithMatcher{ExtensionConfig: &corev3.TypedExtensionConfig{Name: name, TypedConfig: mustAny(m)}})
}

// Short names for the modes the table uses.
const (
	S    = extprocv3.ProcessingMode_SEND
	K    = extprocv3.ProcessingMode_SKIP
	NONE = extprocv3.ProcessingMode_NONE
	BUF  = extprocv3.ProcessingMode_BUFFERED
)

func mode(h extprocv3.ProcessingMode_HeaderSendMode, b extprocv3.ProcessingMode_BodySendMode) *extprocv3.ProcessingMode {
	return &extprocv3.ProcessingMode{RequestHeaderMode: h, RequestBodyMode: b}
}

func extProc(h extprocv3.ProcessingMode_HeaderSendMode, b extprocv3.ProcessingMode_BodySendMode, ns ...string) *extprocv3.ExternalProcessor {
	ep := &extprocv3.ExternalProcessor{ProcessingMode: mode(h, b)}
	if len(ns) > 0 {
		ep.MetadataOptions = &extprocv3.MetadataOptions{ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: ns}}
	}
	return ep
}

func routing(ep *extprocv3.ExternalProcessor) *extprocv3.ExternalProcessor {
	ep.MutationRules = &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)}
	return ep
}

func setHeader(key, value string) *headermutationv3.HeaderMutation {
	return &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{RequestMutations: []*mutationrulesv3.HeaderMutation{{
		Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}}},
	}}}}
}

var (
	router = hf(xds.FilterRouter, &routerv3.Router{})
	codec  = hf(xds.FilterUpstreamCodec, &upstreamcodecv3.UpstreamCodec{})
)

func ep(m proto.Message) *hcmv3.HttpFilter { return hf(xds.FilterExtProc, m) }
func hm(m proto.Message) *hcmv3.HttpFilter { return hf(xds.FilterHeaderMutation, m) }

func perRoute(h extprocv3.ProcessingMode_HeaderSendMode, b extprocv3.ProcessingMode_BodySendMode) map[string]*anypb.Any {
	return map[string]*anypb.Any{xds.FilterExtProc: mustAny(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{
		Overrides: &extprocv3.ExtProcOverrides{ProcessingMode: mode(h, b)},
	}})}
}

func plainRoute(name string) *routev3.Route {
	return &routev3.Route{
		Name:   name,
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}},
	}
}

func backendRoute(name string) *routev3.Route {
	r := plainRoute("backend-" + name)
	r.Match.Headers = []*routev3.HeaderMatcher{{
		Name: config.HeaderBackend,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name},
		}},
	}}
	return r
}

func rc(routes ...*routev3.Route) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: routes}}}
}

type hcmOpt func(*hcmv3.HttpConnectionManager)

func rds(name string) hcmOpt {
	return func(h *hcmv3.HttpConnectionManager) {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: name}}
	}
}

func early(ms ...*mutationrulesv3.HeaderMutation) hcmOpt {
	return func(h *hcmv3.HttpConnectionManager) {
		h.EarlyHeaderMutationExtensions = append(h.EarlyHeaderMutationExtensions, &corev3.TypedExtensionConfig{
			Name:        "envoy.http.early_header_mutation.header_mutation",
			TypedConfig: mustAny(&earlymutationv3.HeaderMutation{Mutations: ms}),
		})
	}
}

func removeHeader(n string) *mutationrulesv3.HeaderMutation {
	return &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: n}}
}

func removePrefix(p string) *mutationrulesv3.HeaderMutation {
	return &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_RemoveOnMatch_{RemoveOnMatch: &mutationrulesv3.HeaderMutation_RemoveOnMatch{
		KeyMatcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p}},
	}}}
}

// listener builds one listener whose HCM has filters and, unless an
// option says otherwise, the inline route config r (rc of a plain route
// when nil).
func listener(r *routev3.RouteConfiguration, filters []*hcmv3.HttpFilter, opts ...hcmOpt) *listenerv3.Listener {
	if r == nil {
		r = rc(plainRoute("default"))
	}
	h := &hcmv3.HttpConnectionManager{
		StatPrefix:     "t",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: r},
		HttpFilters:    filters,
	}
	for _, o := range opts {
		o(h)
	}
	return &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)},
	}}}}}
}

// cluster builds a cluster at host:443 with upstream filters and, when tc
// is non-nil, a TLS transport socket.
func cluster(host string, tc *tlsv3.UpstreamTlsContext, filters ...*hcmv3.HttpFilter) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name: "c",
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "c", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 443},
				}}},
			}}}},
		}}},
	}
	if len(filters) > 0 {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{xds.HTTPProtocolOptionsKey: mustAny(&upstreamhttpv3.HttpProtocolOptions{HttpFilters: filters})}
	}
	if tc != nil {
		c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(tc)}}
	}
	return c
}

func tlsCtx(sni string, vc *tlsv3.CertificateValidationContext) *tlsv3.UpstreamTlsContext {
	tc := &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: &tlsv3.CommonTlsContext{}}
	if vc != nil {
		tc.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	return tc
}

var (
	trustedCA   = &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/ssl/ca.pem"}}
	sanProvider = []*tlsv3.SubjectAltNameMatcher{{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "api.example.com"}},
	}}
)

func res(ls []*listenerv3.Listener, cs ...*clusterv3.Cluster) *xds.Resources {
	return &xds.Resources{Listeners: ls, Clusters: cs}
}

func ls(l ...*listenerv3.Listener) []*listenerv3.Listener { return l }

// ---- the table ----

func TestCheck(t *testing.T) {
	withRDS := func(r *xds.Resources, rcs ...*routev3.RouteConfiguration) *xds.Resources {
		r.Routes = rcs
		return r
	}
	vhOverride := rc(plainRoute("a"))
	vhOverride.VirtualHosts[0].TypedPerFilterConfig = map[string]*anypb.Any{
		xds.FilterExtProc: mustAny(&routev3.FilterConfig{Config: perRoute(K, BUF)[xds.FilterExtProc]}),
	}
	overridden := func(r *routev3.Route, m map[string]*anypb.Any) *routev3.Route { r.TypedPerFilterConfig = m; return r }
	readsRoute := plainRoute("reads")
	readsRoute.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-ns", Value: "%DYNAMIC_METADATA(weir.dev:model)%"}}}

	tests := []struct {
		name   string
		res    *xds.Resources
		want   []int  // rules that fire, in any order
		wantIn string // a substring of the joined error
	}{
		{name: "empty", res: &xds.Resources{}},

		// Rule 1.
		{name: "r1 pass: router ext_proc SEND headers with BUFFERED body",
			res: res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(S, BUF)), router})))},
		{name: "r1 pass: DEFAULT header mode means SEND",
			res: res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(extprocv3.ProcessingMode_DEFAULT, BUF)), router})))},
		{name: "r1 fail: router ext_proc SKIP headers with BUFFERED body",
			res:  res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(K, BUF)), router}))),
			want: []int{RuleRouterExtProc}, wantIn: `http_filters[0] "envoy.filters.http.ext_proc": request_body_mode BUFFERED with request_header_mode SKIP`},
		{name: "r1 fail: SKIP headers inside match_delegate",
			res:  res(ls(listener(nil, []*hcmv3.HttpFilter{delegated(xds.FilterExtProc, extProc(K, extprocv3.ProcessingMode_STREAMED)), router}))),
			want: []int{RuleRouterExtProc}, wantIn: "match_delegate"},
		{name: "r1 pass: per-route override to SEND headers and no body",
			res: res(ls(listener(rc(overridden(plainRoute("models"), perRoute(S, NONE))), []*hcmv3.HttpFilter{ep(extProc(S, NONE)), router})))},
		{name: "r1 fail: per-route override to SKIP headers with a body",
			res:  res(ls(listener(rc(plainRoute("ok"), overridden(plainRoute("bad"), perRoute(K, BUF))), []*hcmv3.HttpFilter{ep(extProc(S, NONE)), router}))),
			want: []int{RuleRouterExtProc}, wantIn: `routes[1] "bad"`},
		{name: "r1 fail: virtual host override in a FilterConfig wrapper",
			res:  res(ls(listener(vhOverride, []*hcmv3.HttpFilter{ep(extProc(S, NONE)), router}))),
			want: []int{RuleRouterExtProc}, wantIn: "ExtProcPerRoute override"},
		{name: "r1 pass: route disables the ext_proc under a bad vhost override",
			res: res(ls(listener(func() *routev3.RouteConfiguration {
				r := proto.Clone(vhOverride).(*routev3.RouteConfiguration)
				r.VirtualHosts[0].Routes[0].TypedPerFilterConfig = map[string]*anypb.Any{xds.FilterExtProc: mustAny(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}})}
				return r
			}(), []*hcmv3.HttpFilter{ep(extProc(S, NONE)), router})))},
		{name: "r1 fail: per-route override through RDS",
			res: withRDS(res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(S, NONE)), router}, rds("shared")))),
				func() *routev3.RouteConfiguration {
					r := rc(overridden(plainRoute("bad"), perRoute(K, BUF)))
					r.Name = "shared"
					return r
				}()),
			want: []int{RuleRouterExtProc}, wantIn: `route_configuration "shared"`},
		{name: "rds route configuration missing",
			res:  res(ls(listener(nil, []*hcmv3.HttpFilter{router}, rds("missing")))),
			want: []int{RuleDecode}, wantIn: `route configuration "missing" is not in Resources.Routes`},

		// Rule 2.
		{name: "r2 pass: upstream ext_proc SEND headers, BUFFERED body, routing allowed",
			res: res(nil, cluster("10.0.0.1", nil, ep(routing(extProc(S, BUF))), codec))},
		{name: "r2 pass: upstream ext_proc SKIP headers, no body, no routing",
			res: res(nil, cluster("10.0.0.1", nil, ep(extProc(K, NONE)), codec))},
		{name: "r2 fail: upstream ext_proc SKIP headers with BUFFERED body",
			res:  res(nil, cluster("10.0.0.1", nil, ep(extProc(K, BUF)), codec)),
			want: []int{RuleUpstreamExtProc}, wantIn: `cluster "c": http_filters[0] "envoy.filters.http.ext_proc": request_body_mode BUFFERED with`},
		{name: "r2 fail: upstream ext_proc SKIP headers with allow_all_routing",
			res:  res(nil, cluster("10.0.0.1", nil, ep(routing(extProc(K, NONE))), codec)),
			want: []int{RuleUpstreamExtProc}, wantIn: "allow_all_routing"},
		{name: "r2 fail: upstream ext_proc inside match_delegate",
			res:  res(nil, cluster("10.0.0.1", nil, delegated(xds.FilterExtProc, extProc(K, BUF)), codec)),
			want: []int{RuleUpstreamExtProc}, wantIn: "match_delegate"},
		{name: "r2 fail: router's upstream_http_filters",
			res: res(ls(listener(nil, []*hcmv3.HttpFilter{hf(xds.FilterRouter, &routerv3.Router{
				UpstreamHttpFilters: []*hcmv3.HttpFilter{ep(extProc(K, BUF)), codec},
			})}))),
			want: []int{RuleUpstreamExtProc}, wantIn: "upstream_http_filters[0]"},

		// Rule 3. SKIP headers with no body keeps rules 1 and 2 quiet.
		{name: "r3 pass: upstream header_mutation reads metadata from a SEND-headers ext_proc",
			res: res(nil, cluster("10.0.0.1", nil, ep(extProc(S, BUF, "weir.dev")), hm(setHeader("content-length", "%DYNAMIC_METADATA(weir.dev:content_length)%")), codec))},
		{name: "r3 pass: reads a namespace the ext_proc does not write",
			res: res(nil, cluster("10.0.0.1", nil, ep(extProc(K, NONE, "weir.dev")), hm(setHeader("x-a", "%DYNAMIC_METADATA(other:k)%")), codec))},
		{name: "r3 fail: upstream header_mutation reads metadata a SKIP-headers ext_proc writes",
			res:  res(nil, cluster("10.0.0.1", nil, ep(extProc(K, NONE, "weir.dev")), hm(setHeader("content-length", "%DYNAMIC_METADATA(weir.dev:content_length)%")), codec)),
			want: []int{RuleMetadataOrder}, wantIn: `http_filters[1] "envoy.filters.http.header_mutation"`},
		{name: "r3 fail: downstream header_mutation after the ext_proc, METADATA(DYNAMIC:...) form",
			res:  res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(K, NONE, "weir.dev")), hm(setHeader("x-a", "%METADATA(DYNAMIC:weir.dev:model)%")), router}))),
			want: []int{RuleMetadataOrder}, wantIn: `namespace "weir.dev"`},
		{name: "r3 pass: downstream header_mutation before the ext_proc",
			res: res(ls(listener(nil, []*hcmv3.HttpFilter{hm(setHeader("x-a", "%DYNAMIC_METADATA(weir.dev:model)%")), ep(extProc(K, NONE, "weir.dev")), router})))},
		{name: "r3 fail: upstream header_mutation reads metadata a routed-from downstream SKIP ext_proc writes",
			res: res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(K, NONE, "weir.dev")), router})),
				cluster("10.0.0.1", nil, ep(extProc(S, BUF)), hm(setHeader("content-length", "%DYNAMIC_METADATA(weir.dev:content_length)%")), codec)),
			want: []int{RuleMetadataOrder}, wantIn: `cluster "c": http_filters[1] "envoy.filters.http.header_mutation": request_mutations value "%DYNAMIC_METADATA(weir.dev:content_length)%" reads dynamic metadata namespace "weir.dev", which the earlier listener "l"`},
		{name: "r3 pass: the downstream writer holds the headers",
			res: res(ls(listener(nil, []*hcmv3.HttpFilter{ep(extProc(S, BUF, "weir.dev")), router})),
				cluster("10.0.0.1", nil, ep(extProc(S, BUF)), hm(setHeader("content-length", "%DYNAMIC_METADATA(weir.dev:content_length)%")), codec))},
		{name: "r3 pass: the downstream SKIP writer routes to another cluster",
			res: res(ls(listener(rc(func() *routev3.Route {
				r := plainRoute("elsewhere")
				r.GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "other"}
				return r
			}()), []*hcmv3.HttpFilter{ep(extProc(K, NONE, "weir.dev")), router})),
				cluster("10.0.0.1", nil, ep(extProc(S, BUF)), hm(setHeader("content-length", "%DYNAMIC_METADATA(weir.dev:content_length)%")), codec))},
		{name: "r3 fail: route request_headers_to_add evaluated by the router",
			res:  res(ls(listener(rc(readsRoute), []*hcmv3.HttpFilter{ep(extProc(K, NONE, "weir.dev")), router}))),
			want: []int{RuleMetadataOrder}, wantIn: `routes[0] "reads" request_headers_to_add`},

		// Rule 4.
		{name: "r4 pass: trusted_ca and a SAN matcher",
			res: res(nil, cluster("api.example.com", tlsCtx("", &tlsv3.CertificateValidationContext{TrustedCa: trustedCA, MatchTypedSubjectAltNames: sanProvider})))},
		{name: "r4 fail: system_root_certs alone is not implemented in Envoy",
			res:  res(nil, cluster("api.example.com", tlsCtx("api.example.com", &tlsv3.CertificateValidationContext{SystemRootCerts: &tlsv3.CertificateValidationContext_SystemRootCerts{}}))),
			want: []int{RuleUpstreamTLS}, wantIn: "no validation context with a CA"},
		{name: "r4 pass: SDS validation context and sni",
			res: res(nil, cluster("api.example.com", &tlsv3.UpstreamTlsContext{Sni: "api.example.com", CommonTlsContext: &tlsv3.CommonTlsContext{
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ca"}},
			}}))},
		{name: "r4 pass: CA without a name on an IP endpoint",
			res: res(nil, cluster("10.0.0.1", tlsCtx("", &tlsv3.CertificateValidationContext{TrustedCa: trustedCA})))},
		{name: "r4 pass: plaintext cluster",
			res: res(nil, cluster("api.example.com", nil))},
		{name: "r4 fail: sni but no validation context (today's shape)",
			res:  res(nil, cluster("api.example.com", tlsCtx("api.example.com", nil))),
			want: []int{RuleUpstreamTLS}, wantIn: "no validation context"},
		{name: "r4 fail: CA but neither SAN nor sni on a DNS endpoint",
			res:  res(nil, cluster("api.example.com", tlsCtx("", &tlsv3.CertificateValidationContext{TrustedCa: trustedCA}))),
			want: []int{RuleUpstreamTLS}, wantIn: "neither match_typed_subject_alt_names nor an sni"},
		{name: "r4 fail: ACCEPT_UNTRUSTED",
			res: res(nil, cluster("api.example.com", tlsCtx("api.example.com", &tlsv3.CertificateValidationContext{
				TrustedCa: trustedCA, TrustChainVerification: tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED,
			}))),
			want: []int{RuleUpstreamTLS}},

		// Rule 5.
		{name: "r5 fail: route matches x-weir-backend with no early strip",
			res:  res(ls(listener(rc(backendRoute("openai"), plainRoute("none")), []*hcmv3.HttpFilter{router}))),
			want: []int{RuleEarlyStrip}, wantIn: `routes[0] "backend-openai" matches on request header "x-weir-backend"`},
		{name: "r5 fail: an HTTP header_mutation strip is too late",
			res: res(ls(listener(rc(backendRoute("openai")), []*hcmv3.HttpFilter{hm(&headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{
				RequestMutations: []*mutationrulesv3.HeaderMutation{removeHeader(config.HeaderBackend)},
			}}), router}))),
			want: []int{RuleEarlyStrip}},
		{name: "r5 fail: early mutation removes another header",
			res:  res(ls(listener(rc(backendRoute("openai")), []*hcmv3.HttpFilter{router}, early(removeHeader("x-other"))))),
			want: []int{RuleEarlyStrip}},
		{name: "r5 pass: early mutation removes the header by name",
			res: res(ls(listener(rc(backendRoute("openai")), []*hcmv3.HttpFilter{router}, early(removeHeader(config.HeaderBackend)))))},
		{name: "r5 pass: early remove_on_match prefix x-weir-",
			res: res(ls(listener(rc(backendRoute("openai")), []*hcmv3.HttpFilter{router}, early(removePrefix(config.InternalHeaderPrefix)))))},
		{name: "r5 fail: through RDS",
			res: withRDS(res(ls(listener(nil, []*hcmv3.HttpFilter{router}, rds("shared")))), func() *routev3.RouteConfiguration {
				r := rc(backendRoute("openai"))
				r.Name = "shared"
				return r
			}()),
			want: []int{RuleEarlyStrip}, wantIn: `route_configuration "shared"`},
		{name: "r5 pass: through RDS with the early strip",
			res: withRDS(res(ls(listener(nil, []*hcmv3.HttpFilter{router}, rds("shared"), early(removePrefix("x-weir-"))))), func() *routev3.RouteConfiguration {
				r := rc(backendRoute("openai"))
				r.Name = "shared"
				return r
			}())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.res)
			var got []int
			if err != nil {
				for _, e := range unjoin(err) {
					var f *Finding
					if !errors.As(e, &f) {
						t.Fatalf("finding %v is not a *Finding", e)
					}
					got = append(got, f.Rule)
					if want := fmt.Sprintf("rule %d (%s): ", f.Rule, ruleNames[f.Rule]); !strings.HasPrefix(e.Error(), want) {
						t.Errorf("%q does not start with %q", e, want)
					}
				}
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("rules = %v, want %v; err:\n%v", got, want, err)
			}
			if tt.wantIn != "" && !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error does not contain %q:\n%v", tt.wantIn, err)
			}
		})
	}
}

// TestFindingsCiteEnvoySource keeps every rule's message tied to the Envoy
// function it relies on.
func TestFindingsCiteEnvoySource(t *testing.T) {
	cites := map[int]string{
		RuleRouterExtProc:   "ext_proc.cc Filter::decodeHeaders",
		RuleUpstreamExtProc: "upstream_request.cc UpstreamRequest::acceptHeadersFromRouter",
		RuleMetadataOrder:   "header_mutation.cc HeaderMutation::decodeHeaders",
		RuleUpstreamTLS:     "default_validator.cc DefaultCertValidator::initializeSslContexts",
		RuleEarlyStrip:      "conn_manager_impl.cc ActiveStream::decodeHeaders",
	}
	r := res(ls(listener(rc(backendRoute("x")), []*hcmv3.HttpFilter{ep(extProc(K, BUF, "weir.dev")), hm(setHeader("a", "%DYNAMIC_METADATA(weir.dev:a)%")), router})),
		cluster("api.example.com", tlsCtx("api.example.com", nil), ep(extProc(K, BUF)), codec))
	err := Check(r)
	if err == nil {
		t.Fatal("no findings")
	}
	seen := map[int]bool{}
	for _, e := range unjoin(err) {
		var f *Finding
		if errors.As(e, &f) {
			seen[f.Rule] = true
			if c := cites[f.Rule]; !strings.Contains(f.Msg, c) {
				t.Errorf("rule %d message does not cite %q: %s", f.Rule, c, f.Msg)
			}
		}
	}
	for rule := range cites {
		if !seen[rule] {
			t.Errorf("rule %d did not fire", rule)
		}
	}
}
