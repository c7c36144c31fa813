package xds

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	skipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/matcher/action/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
)

// address is a parsed endpoint: a socket (host, port) or a unix pipe.
type address struct {
	host string
	port uint32
	pipe string
	ip   bool
}

// parseAddress reads "host:port" or "unix:///path".
func parseAddress(s string) (address, error) {
	if p, ok := strings.CutPrefix(s, "unix://"); ok {
		if p == "" || p[0] != '/' {
			return address{}, fmt.Errorf("%q: unix socket path must be absolute", s)
		}
		return address{pipe: p}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return address{}, fmt.Errorf("%q: %w", s, err)
	}
	return hostPort(host, port)
}

func hostPort(host, port string) (address, error) {
	if host == "" {
		return address{}, errors.New("host is required")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return address{}, fmt.Errorf("bad port %q", port)
	}
	_, ipErr := netip.ParseAddr(host)
	return address{host: host, port: uint32(n), ip: ipErr == nil}, nil
}

func (a address) envoy() *corev3.Address {
	if a.pipe != "" {
		return &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: a.pipe}}}
	}
	return socketAddress(a.host, a.port)
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// discovery picks STATIC for literals and pipes, LOGICAL_DNS (one
// connection target, re-resolved) for names of SaaS endpoints, and
// STRICT_DNS where every resolved address should be used.
func (a address) discovery(name clusterv3.Cluster_DiscoveryType) *clusterv3.Cluster_Type {
	if a.pipe != "" || a.ip {
		return &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	}
	return &clusterv3.Cluster_Type{Type: name}
}

func loadAssignment(cluster string, a address, md *corev3.Metadata) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: a.envoy()}},
				Metadata:       md,
			}},
		}},
	}
}

// extProcCluster is the gRPC (HTTP/2) cluster of the extproc server.
// grpcProtocolOptions are the HTTP options of a cluster that speaks gRPC
// (the extproc, the controller's ADS): HTTP/2 only.
func grpcProtocolOptions() (*anypb.Any, error) {
	return anypb.New(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	})
}

func extProcCluster(cfg *config.Config, opts Options) (*clusterv3.Cluster, error) {
	a, err := parseAddress(opts.ExtProcAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: extproc address: %w", ErrInvalidOptions, err)
	}
	po, err := grpcProtocolOptions()
	if err != nil {
		return nil, fmt.Errorf("xds: pack extproc protocol options: %w", err)
	}
	c := &clusterv3.Cluster{
		Name:                 ExtProcCluster,
		ClusterDiscoveryType: a.discovery(clusterv3.Cluster_STRICT_DNS),
		ConnectTimeout:       durationpb.New(connectTimeout),
		// Whole bodies travel in single gRPC messages.
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(bufferLimit(cfg)),
		LoadAssignment:                loadAssignment(ExtProcCluster, a, nil),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{HTTPProtocolOptionsKey: po},
	}
	if opts.ExtProcTLS != nil {
		if c.TransportSocket, err = extProcTLS(opts.ExtProcTLS, a); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// backendURL splits a backend base URL into its endpoint and TLS need.
func backendURL(raw string) (address, bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return address{}, false, err
	}
	tls := u.Scheme == "https"
	if !tls && u.Scheme != "http" {
		return address{}, false, fmt.Errorf("base_url %q: scheme must be http or https", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if tls {
			port = "443"
		}
	}
	a, err := hostPort(u.Hostname(), port)
	if err != nil {
		return address{}, false, fmt.Errorf("base_url %q: %w", raw, err)
	}
	return a, tls, nil
}

func backendCluster(cfg *config.Config, b *config.Backend, opts Options) (*clusterv3.Cluster, error) {
	a, tls, err := backendURL(b.BaseURL)
	if err != nil {
		return nil, err
	}
	name := config.ClusterName(b.Name)
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		config.MetadataNamespace: {Fields: map[string]*structpb.Value{config.MetaBackend: structpb.NewStringValue(b.Name)}},
	}}
	filters, err := upstreamHTTPFilters(b, opts)
	if err != nil {
		return nil, err
	}
	po := &upstreamhttpv3.HttpProtocolOptions{HttpFilters: filters}
	if tls {
		// ALPN picks HTTP/2 where the provider offers it.
		po.UpstreamProtocolOptions = &upstreamhttpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &upstreamhttpv3.HttpProtocolOptions_AutoHttpConfig{
			HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		}}
	} else {
		po.UpstreamProtocolOptions = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
		}}
	}
	poAny, err := anypb.New(po)
	if err != nil {
		return nil, fmt.Errorf("xds: pack protocol options: %w", err)
	}
	c := &clusterv3.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          a.discovery(clusterv3.Cluster_LOGICAL_DNS),
		ConnectTimeout:                durationpb.New(connectTimeout),
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(bufferLimit(cfg)),
		LoadAssignment:                loadAssignment(name, a, md),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{HTTPProtocolOptionsKey: poAny},
	}
	if !a.ip {
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if tls {
		if c.TransportSocket, err = backendTLS(b, a, opts.SystemCAFile); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// MatchDelegate names the match_delegate filter that wraps the upstream
// ext_proc, and SkipAction its skip action.
const (
	MatchDelegate = "envoy.filters.http.match_delegate"
	SkipAction    = "envoy.filters.http.match_delegate.skip"
)

// upstreamHTTPFilters is the per-attempt chain of backend's cluster: the
// upstream-level ext_proc, wrapped in a match_delegate that skips it while
// the request's headers are already prepared for this backend, then the
// codec.
//
// The router-level reply already carries the translated body, :path,
// :authority and credentials for the backend it picked and names it in
// x-weir-backend, so the common attempt costs no upstream message. The
// filter engages only on an attempt whose headers were prepared for
// another backend: attempts share one header map
// (upstream_request.cc acceptHeadersFromRouter) and the router replays its
// buffered body to each. match_delegate is registered as an upstream
// filter (match_delegate/config.cc REGISTER_FACTORY(UpstreamMatchDelegateConfig,
// UpstreamHttpFilterConfigFactory)) and evaluates its matcher on the
// request headers in decodeHeaders; a matched skip action makes every
// callback Continue.
func upstreamHTTPFilters(b *config.Backend, opts Options) ([]*hcmv3.HttpFilter, error) {
	ns := &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{config.MetadataNamespace}}
	extProc := &extprocv3.ExternalProcessor{
		GrpcService: extProcGrpcService(config.FilterLevelUpstream),
		// Headers SEND: with a BUFFERED body they are held until the body
		// reply, whose :path, :authority, credential and content-length
		// mutations then apply (SKIP would drop them: processor_state.cc
		// processHeaderMutationIfAvailable with headers_ null).
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
			ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		RequestAttributes: append([]string(nil), config.UpstreamRequestAttributes...),
		MessageTimeout:    durationpb.New(opts.MessageTimeout),
		StatPrefix:        "weir_upstream",
		MetadataOptions:   &extprocv3.MetadataOptions{ForwardingNamespaces: ns},
		MutationRules:     &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
	}
	epAny, err := anypb.New(extProc)
	if err != nil {
		return nil, fmt.Errorf("xds: pack upstream ext_proc: %w", err)
	}
	input, err := anypb.New(&matcherv3.HttpRequestHeaderMatchInput{HeaderName: config.HeaderBackend})
	if err != nil {
		return nil, fmt.Errorf("xds: pack match input: %w", err)
	}
	skip, err := anypb.New(&skipv3.SkipFilter{})
	if err != nil {
		return nil, fmt.Errorf("xds: pack skip action: %w", err)
	}
	wrapped := &matchingv3.ExtensionWithMatcher{
		ExtensionConfig: &corev3.TypedExtensionConfig{Name: FilterExtProc, TypedConfig: epAny},
		XdsMatcher: &xdsmatcherv3.Matcher{MatcherType: &xdsmatcherv3.Matcher_MatcherList_{MatcherList: &xdsmatcherv3.Matcher_MatcherList{
			Matchers: []*xdsmatcherv3.Matcher_MatcherList_FieldMatcher{{
				Predicate: &xdsmatcherv3.Matcher_MatcherList_Predicate{MatchType: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_{
					SinglePredicate: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate{
						Input: &xdscorev3.TypedExtensionConfig{Name: "request-headers", TypedConfig: input},
						Matcher: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch{
							ValueMatch: &xdsmatcherv3.StringMatcher{MatchPattern: &xdsmatcherv3.StringMatcher_Exact{Exact: b.Name}},
						},
					},
				}},
				OnMatch: &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{
					Action: &xdscorev3.TypedExtensionConfig{Name: SkipAction, TypedConfig: skip},
				}},
			}},
		}}},
	}
	out := make([]*hcmv3.HttpFilter, 0, 2)
	for _, f := range []struct {
		name string
		msg  proto.Message
	}{
		{MatchDelegate, wrapped},
		{FilterUpstreamCodec, &upstreamcodecv3.UpstreamCodec{}},
	} {
		a, err := anypb.New(f.msg)
		if err != nil {
			return nil, fmt.Errorf("xds: pack upstream %s: %w", f.name, err)
		}
		out = append(out, &hcmv3.HttpFilter{Name: f.name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}})
	}
	return out, nil
}
