package harness

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	skipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/matcher/action/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyheadermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weir-ai/weir/controller/xds"
)

const (
	filterExtProc = xds.FilterExtProc
	// defaultMessageTimeout is Envoy's ext_proc default [EP message_timeout].
	defaultMessageTimeout = 200 * time.Millisecond
	// defaultBufferLimit is Envoy's per-connection buffer default (1 MiB).
	defaultBufferLimit = 1 << 20
)

type filterKind int

const (
	kindHeaderMutation filterKind = iota
	kindExtProc
	kindRouter
	kindUpstreamCodec
)

type httpFilter struct {
	name string
	kind filterKind
	hm   *headermutationv3.HeaderMutation
	ep   *extProcCfg
	// match is set when the filter is wrapped in match_delegate: it
	// reports whether the filter is skipped for these request headers.
	match func(*headers) bool
}

// extProcCfg is one ext_proc filter's configuration as the harness uses it.
type extProcCfg struct {
	name             string
	cluster          string
	initialMetadata  []*corev3.HeaderValue
	mode             *extprocv3.ProcessingMode
	allowOverride    bool
	reqAttrs         attrSet
	respAttrs        attrSet
	forwardNS        []string
	receiveNS        []string
	rules            mutationRules
	timeout          time.Duration
	failureModeAllow bool
	statusOnError    int
	upstream         bool
}

type localMapper struct {
	status      int
	body        string
	contentType string
}

type listenerCfg struct {
	// early are the HCM's early_header_mutation_extensions.
	early       []*mutationrulesv3.HeaderMutation
	bufferLimit int64
	filters     []httpFilter
	routes      *routev3.RouteConfiguration
	mappers     []localMapper
}

type clusterCfg struct {
	name        string
	endpoints   []endpoint
	tls         bool
	filters     []httpFilter
	bufferLimit int64
}

func unpack[T proto.Message](a *anypb.Any, m T) (T, error) {
	if err := a.UnmarshalTo(m); err != nil {
		return m, fmt.Errorf("unpack %s: %w", a.GetTypeUrl(), err)
	}
	return m, nil
}

func parseListener(l *listenerv3.Listener, routes []*routev3.RouteConfiguration) (*listenerCfg, error) {
	if len(l.GetFilterChains()) != 1 || len(l.GetFilterChains()[0].GetFilters()) != 1 {
		return nil, fmt.Errorf("listener %s: the harness emulates one filter chain with one network filter", l.GetName())
	}
	hcm, err := unpack(l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	if err != nil {
		return nil, err
	}
	lc := &listenerCfg{bufferLimit: defaultBufferLimit}
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		lc.bufferLimit = int64(v.GetValue())
	}
	switch rs := hcm.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_RouteConfig:
		lc.routes = rs.RouteConfig
	case *hcmv3.HttpConnectionManager_Rds:
		for _, r := range routes {
			if r.GetName() == rs.Rds.GetRouteConfigName() {
				lc.routes = r
			}
		}
		if lc.routes == nil {
			return nil, fmt.Errorf("rds route config %q not in resources", rs.Rds.GetRouteConfigName())
		}
	default:
		return nil, fmt.Errorf("route specifier %T not emulated", rs)
	}
	for _, e := range hcm.GetEarlyHeaderMutationExtensions() {
		em, err := unpack(e.GetTypedConfig(), &earlyheadermutationv3.HeaderMutation{})
		if err != nil {
			return nil, fmt.Errorf("early header mutation %s: %w", e.GetName(), err)
		}
		for _, m := range em.GetMutations() {
			switch a := m.GetAction().(type) {
			case *mutationrulesv3.HeaderMutation_Remove:
			case *mutationrulesv3.HeaderMutation_RemoveOnMatch_:
				sm := a.RemoveOnMatch.GetKeyMatcher()
				if sm.GetIgnoreCase() || (sm.GetExact() == "" && sm.GetPrefix() == "") {
					return nil, fmt.Errorf("early header mutation %s: only exact or prefix key matchers are emulated", e.GetName())
				}
			default:
				return nil, fmt.Errorf("early header mutation %s: action %T not emulated", e.GetName(), a)
			}
			lc.early = append(lc.early, m)
		}
	}
	for _, m := range hcm.GetLocalReplyConfig().GetMappers() {
		sc := m.GetFilter().GetStatusCodeFilter()
		if sc == nil || sc.GetComparison().GetOp() != 0 /* EQ */ {
			return nil, fmt.Errorf("local reply mapper: only status_code_filter EQ is emulated")
		}
		lm := localMapper{status: int(sc.GetComparison().GetValue().GetDefaultValue())}
		if f := m.GetBodyFormatOverride(); f != nil {
			lm.body = f.GetTextFormatSource().GetInlineString()
			if lm.body == "" {
				lm.body = f.GetTextFormat()
			}
			lm.contentType = f.GetContentType()
		}
		lc.mappers = append(lc.mappers, lm)
	}
	for _, f := range hcm.GetHttpFilters() {
		hf, err := parseFilter(f, false)
		if err != nil {
			return nil, err
		}
		lc.filters = append(lc.filters, hf)
	}
	if len(lc.filters) == 0 || lc.filters[len(lc.filters)-1].kind != kindRouter {
		return nil, fmt.Errorf("the last HTTP filter must be the router")
	}
	return lc, nil
}

func parseFilter(f *hcmv3.HttpFilter, upstream bool) (httpFilter, error) {
	a := f.GetTypedConfig()
	hf := httpFilter{name: f.GetName()}
	switch a.GetTypeUrl() {
	case "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation":
		m, err := unpack(a, &headermutationv3.HeaderMutation{})
		if err != nil {
			return hf, err
		}
		if len(m.GetMutations().GetResponseMutations()) > 0 {
			return hf, fmt.Errorf("%s: response mutations are not emulated", f.GetName())
		}
		hf.kind, hf.hm = kindHeaderMutation, m
	case "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor":
		m, err := unpack(a, &extprocv3.ExternalProcessor{})
		if err != nil {
			return hf, err
		}
		ep, err := parseExtProc(f.GetName(), m, upstream)
		if err != nil {
			return hf, err
		}
		hf.kind, hf.ep = kindExtProc, ep
	case "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher":
		m, err := unpack(a, &matchingv3.ExtensionWithMatcher{})
		if err != nil {
			return hf, err
		}
		inner, err := parseFilter(&hcmv3.HttpFilter{Name: m.GetExtensionConfig().GetName(),
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: m.GetExtensionConfig().GetTypedConfig()}}, upstream)
		if err != nil {
			return hf, fmt.Errorf("%s: %w", f.GetName(), err)
		}
		if inner.kind != kindExtProc || inner.match != nil {
			return hf, fmt.Errorf("%s: only a match_delegate around ext_proc is emulated", f.GetName())
		}
		skip, err := compileSkipMatcher(m)
		if err != nil {
			return hf, fmt.Errorf("%s: %w", f.GetName(), err)
		}
		inner.match = skip
		return inner, nil
	case "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router":
		if _, err := unpack(a, &routerv3.Router{}); err != nil {
			return hf, err
		}
		hf.kind = kindRouter
	case "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec":
		if _, err := unpack(a, &upstreamcodecv3.UpstreamCodec{}); err != nil {
			return hf, err
		}
		hf.kind = kindUpstreamCodec
	default:
		return hf, fmt.Errorf("filter %s (%s) is not emulated", f.GetName(), a.GetTypeUrl())
	}
	return hf, nil
}

func parseExtProc(name string, m *extprocv3.ExternalProcessor, upstream bool) (*extProcCfg, error) {
	eg := m.GetGrpcService().GetEnvoyGrpc()
	if eg == nil {
		return nil, fmt.Errorf("%s: only envoy_grpc services are emulated", name)
	}
	pm := m.GetProcessingMode()
	if pm == nil {
		pm = &extprocv3.ProcessingMode{}
	}
	for _, bm := range []extprocv3.ProcessingMode_BodySendMode{pm.GetRequestBodyMode(), pm.GetResponseBodyMode()} {
		if bm == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED || bm == extprocv3.ProcessingMode_BUFFERED_PARTIAL {
			return nil, fmt.Errorf("%s: body mode %s is not emulated", name, bm)
		}
	}
	if m.GetObservabilityMode() || m.GetSendBodyWithoutWaitingForHeaderResponse() {
		return nil, fmt.Errorf("%s: observability mode and send_body_without_waiting are not emulated", name)
	}
	if upstream && (pm.GetResponseHeaderMode() == extprocv3.ProcessingMode_SEND || pm.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE) {
		// Weir's upstream filter needs request phases only; emulating
		// per-attempt response processing (and its interplay with retries)
		// is left until a config needs it.
		return nil, fmt.Errorf("%s: upstream-level response processing is not emulated", name)
	}
	c := &extProcCfg{
		name:             name,
		cluster:          eg.GetClusterName(),
		initialMetadata:  m.GetGrpcService().GetInitialMetadata(),
		mode:             pm,
		allowOverride:    m.GetAllowModeOverride(),
		forwardNS:        m.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
		receiveNS:        m.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		rules:            rulesFrom(m.GetMutationRules()),
		timeout:          defaultMessageTimeout,
		failureModeAllow: m.GetFailureModeAllow(),
		statusOnError:    500,
		upstream:         upstream,
	}
	if t := m.GetMessageTimeout(); t != nil {
		c.timeout = t.AsDuration()
	}
	if s := m.GetStatusOnError().GetCode(); s != 0 {
		c.statusOnError = int(s)
	}
	var err error
	if c.reqAttrs, err = compileAttrs(m.GetRequestAttributes()); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if c.respAttrs, err = compileAttrs(m.GetResponseAttributes()); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func parseCluster(c *clusterv3.Cluster) (*clusterCfg, error) {
	cc := &clusterCfg{name: c.GetName(), bufferLimit: defaultBufferLimit}
	if v := c.GetPerConnectionBufferLimitBytes(); v != nil {
		cc.bufferLimit = int64(v.GetValue())
	}
	for _, loc := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			ep := endpoint{priority: loc.GetPriority(), metadata: lb.GetMetadata()}
			switch a := lb.GetEndpoint().GetAddress().GetAddress().(type) {
			case *corev3.Address_SocketAddress:
				ep.addr = net.JoinHostPort(a.SocketAddress.GetAddress(), strconv.Itoa(int(a.SocketAddress.GetPortValue())))
			case *corev3.Address_Pipe:
				ep.addr, ep.unix = a.Pipe.GetPath(), true
			default:
				return nil, fmt.Errorf("cluster %s: address %T not emulated", c.GetName(), a)
			}
			cc.endpoints = append(cc.endpoints, ep)
		}
	}
	if len(cc.endpoints) == 0 {
		return nil, fmt.Errorf("cluster %s: no endpoints", c.GetName())
	}
	if ts := c.GetTransportSocket(); ts != nil {
		// Refuses at start-up any TLS option tls.go does not emulate, and
		// a CA or certificate file that does not load. New is to dial TLS
		// clusters with the configs of clusterTLSConfigs (tls.go).
		if _, err := upstreamTLSConfig(ts); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
		}
		cc.tls = true
	}
	if a := c.GetTypedExtensionProtocolOptions()[xds.HTTPProtocolOptionsKey]; a != nil {
		po, err := unpack(a, &upstreamhttpv3.HttpProtocolOptions{})
		if err != nil {
			return nil, err
		}
		for _, f := range po.GetHttpFilters() {
			hf, err := parseFilter(f, true)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
			}
			cc.filters = append(cc.filters, hf)
		}
		if n := len(cc.filters); n > 0 && cc.filters[n-1].kind != kindUpstreamCodec {
			return nil, fmt.Errorf("cluster %s: upstream_codec must be the last upstream filter", c.GetName())
		}
	}
	return cc, nil
}

// matchRoute returns the first matching route of the request's virtual
// host, as Envoy's route table does (VirtualHostImpl::getRouteFromEntries:
// routes in order, first match wins; no fall-through to another virtual
// host). Only the matchers Weir generates are emulated; others fail at
// start-up via checkRoutes.
func matchRoute(rc *routev3.RouteConfiguration, h *headers) *routev3.Route {
	vh := findVirtualHost(rc, h.get(":authority"))
	if vh == nil {
		return nil
	}
	path := pathOnly(h.get(":path"))
	for _, r := range vh.GetRoutes() {
		if routeMatches(r.GetMatch(), path, h) {
			return r
		}
	}
	return nil
}

// findVirtualHost follows source/common/router/config_impl.cc
// RouteMatcher::findVirtualHost: with only a "*" virtual host it is
// chosen whatever the host ("Fast path the case where we only have a
// default virtual host"); otherwise the host, with its port removed when
// ignore_port_in_host_matching is set, is lower-cased and looked up as an
// exact domain, then against "*"-suffix domains longest first
// (findWildcardVirtualHost over a std::map keyed by length with
// std::greater, matching only hosts longer than the suffix), then
// "*"-prefix domains likewise, then the "*" default.
func findVirtualHost(rc *routev3.RouteConfiguration, host string) *routev3.VirtualHost {
	var def *routev3.VirtualHost
	exact := map[string]*routev3.VirtualHost{}
	type wild struct {
		part string
		vh   *routev3.VirtualHost
	}
	var suffixes, prefixes []wild
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			switch {
			case d == "*":
				def = vh
			case strings.HasPrefix(d, "*"):
				suffixes = append(suffixes, wild{d[1:], vh})
			case strings.HasSuffix(d, "*"):
				prefixes = append(prefixes, wild{d[:len(d)-1], vh})
			default:
				exact[strings.ToLower(d)] = vh
			}
		}
	}
	if len(exact) == 0 && len(suffixes) == 0 && len(prefixes) == 0 {
		return def
	}
	if rc.GetIgnorePortInHostMatching() {
		host = stripPort(host)
	}
	host = strings.ToLower(host)
	if vh, ok := exact[host]; ok {
		return vh
	}
	longestFirst := func(ws []wild) {
		slices.SortStableFunc(ws, func(a, b wild) int { return len(b.part) - len(a.part) })
	}
	longestFirst(suffixes)
	for _, w := range suffixes {
		if len(w.part) < len(host) && strings.HasSuffix(host, w.part) {
			return w.vh
		}
	}
	longestFirst(prefixes)
	for _, w := range prefixes {
		if len(w.part) < len(host) && strings.HasPrefix(host, w.part) {
			return w.vh
		}
	}
	return def
}

// stripPort follows source/common/http/header_utility.cc
// HeaderUtility::getPortStart: the port starts at the last ':' unless a
// ']' comes after it ("v6 address is always enclosed in []"); a bare
// IPv6 address therefore loses its last group, as in Envoy.
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host
	}
	if j := strings.LastIndexByte(host, ']'); j >= 0 && j > i {
		return host
	}
	return host[:i]
}

func routeMatches(m *routev3.RouteMatch, path string, h *headers) bool {
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		if len(path) < len(p.Prefix) || path[:len(p.Prefix)] != p.Prefix {
			return false
		}
	case *routev3.RouteMatch_Path:
		if path != p.Path {
			return false
		}
	default:
		return false
	}
	for _, hm := range m.GetHeaders() {
		v, ok := h.get(hm.GetName()), h.has(hm.GetName())
		var match bool
		switch s := hm.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_StringMatch:
			match = ok && stringMatch(s.StringMatch.GetExact(), s.StringMatch.GetPrefix(), v)
		case *routev3.HeaderMatcher_PresentMatch:
			match = ok == s.PresentMatch
		}
		if match == hm.GetInvertMatch() {
			return false
		}
	}
	return true
}

func stringMatch(exact, prefix, v string) bool {
	if exact != "" {
		return v == exact
	}
	return len(v) >= len(prefix) && v[:len(prefix)] == prefix
}

func checkRoutes(rc *routev3.RouteConfiguration) error {
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			if strings.Count(d, "*") > 1 || (d != "*" && strings.Contains(d[1:len(d)-1], "*")) {
				return fmt.Errorf("virtual host %s: domain %q: only exact, \"*\", \"*suffix\" and \"prefix*\" are emulated", vh.GetName(), d)
			}
		}
		for _, r := range vh.GetRoutes() {
			switch r.GetMatch().GetPathSpecifier().(type) {
			case *routev3.RouteMatch_Prefix, *routev3.RouteMatch_Path:
			default:
				return fmt.Errorf("route %s: path matcher not emulated", r.GetName())
			}
			for _, hm := range r.GetMatch().GetHeaders() {
				switch s := hm.GetHeaderMatchSpecifier().(type) {
				case *routev3.HeaderMatcher_PresentMatch:
				case *routev3.HeaderMatcher_StringMatch:
					if s.StringMatch.GetExact() == "" && s.StringMatch.GetPrefix() == "" {
						return fmt.Errorf("route %s: header string matcher not emulated", r.GetName())
					}
				default:
					return fmt.Errorf("route %s: header matcher not emulated", r.GetName())
				}
			}
			if a := r.GetRoute(); a != nil && a.GetCluster() == "" {
				return fmt.Errorf("route %s: only a single cluster is emulated", r.GetName())
			}
			for k, a := range r.GetTypedPerFilterConfig() {
				if _, err := unpack(a, &extprocv3.ExtProcPerRoute{}); err != nil {
					return fmt.Errorf("route %s: per-filter config %s: %w", r.GetName(), k, err)
				}
			}
		}
	}
	return nil
}

// compileSkipMatcher emulates match_delegate's match tree for the subset
// Weir generates (match_delegate/config.cc
// DelegatingStreamFilter::FilterMatchState::evaluateMatchTree): no match
// tree means skip; otherwise the first field matcher whose predicate holds
// decides, and a SkipFilter action skips; with none matching, on_no_match
// decides the same way. Predicates: one request header
// (HttpRequestHeaderMatchInput) against an exact or prefix string; a
// missing header does not match.
func compileSkipMatcher(m *matchingv3.ExtensionWithMatcher) (func(*headers) bool, error) {
	if m.GetMatcher() != nil {
		return nil, fmt.Errorf("the deprecated matcher field is not emulated; use xds_matcher")
	}
	xm := m.GetXdsMatcher()
	if xm == nil {
		return func(*headers) bool { return true }, nil
	}
	isSkip := func(om *xdsmatcherv3.Matcher_OnMatch) (bool, error) {
		if om == nil {
			return false, nil
		}
		a := om.GetAction().GetTypedConfig()
		if a == nil || !a.MessageIs(&skipv3.SkipFilter{}) {
			return false, fmt.Errorf("only the SkipFilter action is emulated, got %v", om)
		}
		return true, nil
	}
	noMatch, err := isSkip(xm.GetOnNoMatch())
	if err != nil {
		return nil, err
	}
	type field struct {
		header        string
		exact, prefix string
		skip          bool
	}
	var fields []field
	for _, fm := range xm.GetMatcherList().GetMatchers() {
		sp := fm.GetPredicate().GetSinglePredicate()
		if sp == nil {
			return nil, fmt.Errorf("only single predicates are emulated")
		}
		in := &matcherv3.HttpRequestHeaderMatchInput{}
		if err := sp.GetInput().GetTypedConfig().UnmarshalTo(in); err != nil {
			return nil, fmt.Errorf("only HttpRequestHeaderMatchInput is emulated: %w", err)
		}
		vm := sp.GetValueMatch()
		if vm == nil || vm.GetIgnoreCase() || (vm.GetExact() == "" && vm.GetPrefix() == "") {
			return nil, fmt.Errorf("only exact or prefix value matchers are emulated")
		}
		skip, err := isSkip(fm.GetOnMatch())
		if err != nil {
			return nil, err
		}
		fields = append(fields, field{strings.ToLower(in.GetHeaderName()), vm.GetExact(), vm.GetPrefix(), skip})
	}
	if xm.GetMatcherTree() != nil {
		return nil, fmt.Errorf("matcher trees are not emulated")
	}
	return func(h *headers) bool {
		for _, f := range fields {
			if h.has(f.header) && stringMatch(f.exact, f.prefix, h.get(f.header)) {
				return f.skip
			}
		}
		return noMatch
	}, nil
}
