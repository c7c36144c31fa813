package xds

import (
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyheadermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
)

func listener(cfg *config.Config, opts Options, rc *routev3.RouteConfiguration) (*listenerv3.Listener, error) {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:       "weir",
		CodecType:        hcmv3.HttpConnectionManager_AUTO,
		UseRemoteAddress: wrapperspb.Bool(true),
		// No overall request timeout: the route timeout bounds each upstream
		// attempt and SSE streams may legitimately run for minutes.
		RequestTimeout:    durationpb.New(0),
		StreamIdleTimeout: durationpb.New(streamIdle(cfg)),
		LocalReplyConfig:  localReplyConfig(),
	}
	early, err := stripInternalHeaders()
	if err != nil {
		return nil, err
	}
	hcm.EarlyHeaderMutationExtensions = []*corev3.TypedExtensionConfig{early}
	if opts.RDS {
		hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: rc.GetName(),
			ConfigSource: &corev3.ConfigSource{
				ResourceApiVersion:    corev3.ApiVersion_V3,
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			},
		}}
	} else {
		hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: proto.Clone(rc).(*routev3.RouteConfiguration)}
	}
	filters, err := listenerHTTPFilters(opts)
	if err != nil {
		return nil, err
	}
	hcm.HttpFilters = filters
	hcmAny, err := anypb.New(hcm)
	if err != nil {
		return nil, fmt.Errorf("xds: pack http connection manager: %w", err)
	}
	return &listenerv3.Listener{
		Name:                          ListenerName,
		Address:                       socketAddress(opts.ListenAddress, opts.ListenPort),
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(bufferLimit(cfg)),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcmAny},
			}},
		}},
	}, nil
}

// streamIdle is the downstream stream idle timeout: at least the longest
// backend attempt, so Envoy never cuts a slow stream the route still allows.
func streamIdle(cfg *config.Config) time.Duration {
	d := streamIdleFloor
	for i := range cfg.Backends {
		if t := cfg.Backends[i].EffectiveTimeout(); t > d {
			d = t
		}
	}
	return d
}

// EarlyHeaderMutation is the name of the HCM extension that strips
// client-sent x-weir-* headers.
const EarlyHeaderMutation = "envoy.http.early_header_mutation.header_mutation"

// stripInternalHeaders removes every x-weir-* header a client sends before
// Envoy picks the route: the HCM caches the route from the client's headers
// before any HTTP filter runs (conn_manager_impl.cc
// ActiveStream::decodeHeaders, refreshCachedRoute), so a header_mutation
// filter would strip x-weir-backend too late to stop a client choosing a
// cluster.
func stripInternalHeaders() (*corev3.TypedExtensionConfig, error) {
	a, err := anypb.New(&earlyheadermutationv3.HeaderMutation{Mutations: []*mutationrulesv3.HeaderMutation{{
		Action: &mutationrulesv3.HeaderMutation_RemoveOnMatch_{RemoveOnMatch: &mutationrulesv3.HeaderMutation_RemoveOnMatch{
			KeyMatcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: config.InternalHeaderPrefix}},
		}},
	}}})
	if err != nil {
		return nil, fmt.Errorf("xds: pack early header mutation: %w", err)
	}
	return &corev3.TypedExtensionConfig{Name: EarlyHeaderMutation, TypedConfig: a}, nil
}

// listenerHTTPFilters fixes the filter order of DESIGN.md: the router-level
// ext_proc, then the router.
//
// Request headers are SENT: with a BUFFERED body Envoy then holds them
// until the body reply (processor_state.cc handleHeadersResponse), so the
// body reply's header mutations (x-weir-backend, :path, :authority,
// credentials, content-length) and clear_route_cache take effect before the
// router's decodeHeaders picks the route. With SKIP, decodeHeaders returns
// Continue and the router routes before Weir has seen the body.
func listenerHTTPFilters(opts Options) ([]*hcmv3.HttpFilter, error) {
	extProc := &extprocv3.ExternalProcessor{
		GrpcService:      extProcGrpcService(config.FilterLevelRouter),
		FailureModeAllow: false,
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		AllowModeOverride:  true,
		ResponseAttributes: append([]string(nil), config.RouterResponseAttributes...),
		MessageTimeout:     durationpb.New(opts.MessageTimeout),
		StatPrefix:         "weir_router",
		MetadataOptions: &extprocv3.MetadataOptions{
			ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{config.MetadataNamespace}},
		},
		// The body reply sets :authority for the chosen backend.
		MutationRules: &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
	}
	out := make([]*hcmv3.HttpFilter, 0, 2)
	for _, f := range []struct {
		name string
		msg  proto.Message
	}{
		{FilterExtProc, extProc},
		{FilterRouter, &routerv3.Router{}},
	} {
		a, err := anypb.New(f.msg)
		if err != nil {
			return nil, fmt.Errorf("xds: pack %s: %w", f.name, err)
		}
		out = append(out, &hcmv3.HttpFilter{Name: f.name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}})
	}
	return out, nil
}

// extProcGrpcService points a filter at the extproc cluster and tags the
// stream with its filter level.
func extProcGrpcService(level string) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ExtProcCluster}},
		InitialMetadata: []*corev3.HeaderValue{{Key: config.FilterLevelHeader, Value: level}},
	}
}

// localReplyConfig rewrites Envoy's own 413 (buffer overflow before the
// extproc saw the body) into the OpenAI error shape.
//
// The body is a text format holding the literal JSON rather than
// json_format, because the OpenAI shape needs "param": null and Envoy's
// structured formatter accepts only strings, numbers, booleans and nested
// structs.
func localReplyConfig() *hcmv3.LocalReplyConfig {
	return &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
			StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
				Op:    accesslogv3.ComparisonFilter_EQ,
				Value: &corev3.RuntimeUInt32{DefaultValue: 413, RuntimeKey: "weir.local_reply.body_too_large_status"},
			}},
		}},
		BodyFormatOverride: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: BodyTooLarge},
			}},
			ContentType: "application/json",
		},
	}}}
}
