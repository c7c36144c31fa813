package xds

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
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
func extProcCluster(cfg *config.Config, opts Options) (*clusterv3.Cluster, error) {
	a, err := parseAddress(opts.ExtProcAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: extproc address: %w", ErrInvalidOptions, err)
	}
	po, err := anypb.New(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	})
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
	filters, err := upstreamHTTPFilters(opts)
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

// upstreamHTTPFilters is the per-attempt chain: the upstream-level ext_proc
// translates the body, then header_mutation restores the content-length
// Envoy stripped (request headers are SKIP with a BUFFERED body), then the
// codec.
func upstreamHTTPFilters(opts Options) ([]*hcmv3.HttpFilter, error) {
	ns := &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{config.MetadataNamespace}}
	extProc := &extprocv3.ExternalProcessor{
		GrpcService: extProcGrpcService(config.FilterLevelUpstream),
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SKIP,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
			ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		RequestAttributes: append([]string(nil), config.UpstreamRequestAttributes...),
		MessageTimeout:    durationpb.New(opts.MessageTimeout),
		StatPrefix:        "weir_upstream",
		MetadataOptions: &extprocv3.MetadataOptions{
			ForwardingNamespaces: ns,
			ReceivingNamespaces:  proto.Clone(ns).(*extprocv3.MetadataOptions_MetadataNamespaces),
		},
		MutationRules: &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
	}
	contentLength := &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{
		RequestMutations: []*mutationrulesv3.HeaderMutation{{
			Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
				Header: &corev3.HeaderValue{
					Key:   "content-length",
					Value: "%DYNAMIC_METADATA(" + config.MetadataNamespace + ":" + config.MetaContentLength + ")%",
				},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				// An empty value (no metadata) adds nothing, leaving the
				// codec to frame the body.
				KeepEmptyValue: false,
			}},
		}},
	}}
	out := make([]*hcmv3.HttpFilter, 0, 3)
	for _, f := range []struct {
		name string
		msg  proto.Message
	}{
		{FilterExtProc, extProc},
		{FilterHeaderMutation, contentLength},
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
