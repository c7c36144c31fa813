// Package bench plays Envoy's two ext_proc filters against an extproc over
// gRPC. The message shape (which phases are sent, which attributes ride on
// them, which metadata namespaces are forwarded, and whether the upstream
// filter's match_delegate skips it) is read from the Envoy resources
// xds.Build renders for a config, never hard-coded, so the bench follows
// the rendered config as it changes.
package bench

import (
	"errors"
	"fmt"
	"strings"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	skipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/matcher/action/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typematcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

// Phase is one ext_proc message kind.
type Phase string

const (
	RequestHeaders  Phase = "request_headers"
	RequestBody     Phase = "request_body"
	ResponseHeaders Phase = "response_headers"
	ResponseBody    Phase = "response_body"
)

// Filter is the part of one ext_proc filter's config that decides what
// goes on the wire.
type Filter struct {
	// Where names the filter in the rendered resources.
	Where string `json:"where"`
	// InitialMetadata is the gRPC metadata of the filter's grpc_service,
	// such as x-weir-filter-level.
	InitialMetadata map[string]string `json:"initial_metadata"`
	// RequestPhases and ResponsePhases are the messages the processing
	// mode sends, in order.
	RequestPhases  []Phase `json:"request_phases"`
	ResponsePhases []Phase `json:"response_phases"`
	// RequestAttributes ride on the first request message, ResponseAttributes
	// on the first response message.
	RequestAttributes  []string `json:"request_attributes"`
	ResponseAttributes []string `json:"response_attributes"`
	// ForwardingNamespaces are sent as metadata_context; ReceivingNamespaces
	// are the dynamic_metadata namespaces the filter accepts from replies.
	ForwardingNamespaces []string `json:"forwarding_namespaces"`
	ReceivingNamespaces  []string `json:"receiving_namespaces"`

	mode *extprocfilterv3.ProcessingMode
}

// Messages returns the number of messages the filter sends per request.
func (f *Filter) Messages() int { return len(f.RequestPhases) + len(f.ResponsePhases) }

// Shape is what Envoy sends for one request routed to one backend.
type Shape struct {
	Backend  string `json:"backend"`
	Router   Filter `json:"router"`
	Upstream Filter `json:"upstream"`
	// UpstreamSkip is the match_delegate matcher wrapping the upstream
	// ext_proc, nil when the filter is not wrapped (it always runs).
	UpstreamSkip *SkipMatcher `json:"upstream_skip,omitempty"`
}

// UpstreamRuns says whether the upstream-level ext_proc runs for an
// attempt whose request headers (after the router-level reply's mutation)
// are h.
func (s *Shape) UpstreamRuns(h *Headers) bool {
	return s.UpstreamSkip == nil || !s.UpstreamSkip.Skips(h)
}

// SkipMatcher is the one form of match_delegate matcher the bench
// evaluates: a matcher_list with a single field matcher whose predicate is
// one HttpRequestHeaderMatchInput against an exact or prefix string, and
// whose on_match action is SkipFilter. Anything else is refused.
type SkipMatcher struct {
	Header string `json:"header"`
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// Skips evaluates the matcher as Envoy's match_delegate does on the
// request headers: HttpRequestHeaderMatchInput yields every value of the
// header joined with ","; an absent header yields no data, which no string
// matcher matches, so the filter runs.
func (m *SkipMatcher) Skips(h *Headers) bool {
	v, ok := h.Get(m.Header)
	if !ok {
		return false
	}
	if m.Prefix != "" {
		return strings.HasPrefix(v, m.Prefix)
	}
	return v == m.Exact
}

// ShapeFromXDS renders cfg with xds.Build and reads the router-level
// ext_proc filter from the listener's HTTP filters and the upstream-level
// one from backend's cluster, unwrapping (and reading the skip matcher of)
// a match_delegate around it. A route or virtual host with a per-filter
// config for either is refused: the bench does not model overrides.
func ShapeFromXDS(cfg *config.Config, backend string) (*Shape, error) {
	res, err := xds.Build(cfg, xds.Options{ExtProcAddress: "unix:///tmp/weirbench-shape.sock"})
	if err != nil {
		return nil, fmt.Errorf("xds.Build: %w", err)
	}
	s := &Shape{Backend: backend}

	// Router level: listener -> HCM -> http_filters.
	if len(res.Listeners) != 1 {
		return nil, fmt.Errorf("xds.Build rendered %d listeners, want 1", len(res.Listeners))
	}
	var hcm *hcmv3.HttpConnectionManager
	for _, fc := range res.Listeners[0].GetFilterChains() {
		for _, nf := range fc.GetFilters() {
			m := &hcmv3.HttpConnectionManager{}
			if nf.GetTypedConfig().MessageIs(m) {
				if err := nf.GetTypedConfig().UnmarshalTo(m); err != nil {
					return nil, fmt.Errorf("unpack http_connection_manager: %w", err)
				}
				hcm = m
			}
		}
	}
	if hcm == nil {
		return nil, errors.New("listener has no http_connection_manager")
	}
	rf, skip, err := findExtProc(hcm.GetHttpFilters())
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	if skip != nil {
		return nil, fmt.Errorf("listener: the router-level %s is wrapped in %s; the bench does not model a matcher there", xds.FilterExtProc, xds.MatchDelegate)
	}
	if s.Router, err = filterShape("listener "+res.Listeners[0].GetName()+" http_filters", rf); err != nil {
		return nil, err
	}
	if err := checkPerRoute(hcm.GetRouteConfig()); err != nil {
		return nil, err
	}
	for _, rc := range res.Routes {
		if err := checkPerRoute(rc); err != nil {
			return nil, err
		}
	}

	// Upstream level: cluster -> HttpProtocolOptions -> http_filters.
	cname := config.ClusterName(backend)
	for _, c := range res.Clusters {
		if c.GetName() != cname {
			continue
		}
		po := &upstreamhttpv3.HttpProtocolOptions{}
		a := c.GetTypedExtensionProtocolOptions()[xds.HTTPProtocolOptionsKey]
		if a == nil {
			return nil, fmt.Errorf("cluster %s has no %s", cname, xds.HTTPProtocolOptionsKey)
		}
		if err := a.UnmarshalTo(po); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cname, err)
		}
		uf, skip, err := findExtProc(po.GetHttpFilters())
		if err != nil {
			return nil, fmt.Errorf("cluster %s upstream filters: %w", cname, err)
		}
		s.UpstreamSkip = skip
		if s.Upstream, err = filterShape("cluster "+cname+" upstream http_filters", uf); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("xds.Build rendered no cluster %s", cname)
}

// findExtProc returns the first ext_proc filter in fs, either plain or
// wrapped in a match_delegate (ExtensionWithMatcher), with the wrapper's
// skip matcher.
func findExtProc(fs []*hcmv3.HttpFilter) (*extprocfilterv3.ExternalProcessor, *SkipMatcher, error) {
	for _, f := range fs {
		ewm := &matchingv3.ExtensionWithMatcher{}
		switch {
		case f.GetName() == xds.FilterExtProc:
			ep := &extprocfilterv3.ExternalProcessor{}
			if err := f.GetTypedConfig().UnmarshalTo(ep); err != nil {
				return nil, nil, fmt.Errorf("unpack %s: %w", xds.FilterExtProc, err)
			}
			return ep, nil, nil
		case f.GetTypedConfig().MessageIs(ewm):
			if err := f.GetTypedConfig().UnmarshalTo(ewm); err != nil {
				return nil, nil, fmt.Errorf("unpack %s: %w", f.GetName(), err)
			}
			ep := &extprocfilterv3.ExternalProcessor{}
			if !ewm.GetExtensionConfig().GetTypedConfig().MessageIs(ep) {
				continue // some other filter behind a matcher
			}
			if err := ewm.GetExtensionConfig().GetTypedConfig().UnmarshalTo(ep); err != nil {
				return nil, nil, fmt.Errorf("unpack %s in %s: %w", xds.FilterExtProc, f.GetName(), err)
			}
			m, err := skipMatcher(ewm)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %q around %s: %w", xds.MatchDelegate, f.GetName(), xds.FilterExtProc, err)
			}
			return ep, m, nil
		}
	}
	return nil, nil, fmt.Errorf("no %s filter", xds.FilterExtProc)
}

// skipMatcher reads the one matcher form the bench evaluates (see
// [SkipMatcher]) and refuses every other.
func skipMatcher(ewm *matchingv3.ExtensionWithMatcher) (*SkipMatcher, error) {
	if ewm.GetMatcher() != nil {
		return nil, errors.New("the deprecated matcher field is not supported by the bench (use xds_matcher)")
	}
	xm := ewm.GetXdsMatcher()
	switch {
	case xm == nil:
		return nil, errors.New("no xds_matcher")
	case xm.GetMatcherList() == nil:
		return nil, errors.New("only a matcher_list is supported by the bench")
	case xm.GetOnNoMatch() != nil:
		return nil, errors.New("on_no_match is not supported by the bench")
	case len(xm.GetMatcherList().GetMatchers()) != 1:
		return nil, fmt.Errorf("%d field matchers; the bench supports exactly one", len(xm.GetMatcherList().GetMatchers()))
	}
	fm := xm.GetMatcherList().GetMatchers()[0]
	sp := fm.GetPredicate().GetSinglePredicate()
	if sp == nil {
		return nil, errors.New("only a single_predicate is supported by the bench")
	}
	in := &typematcherv3.HttpRequestHeaderMatchInput{}
	if !sp.GetInput().GetTypedConfig().MessageIs(in) {
		return nil, fmt.Errorf("input %s is not supported by the bench (only HttpRequestHeaderMatchInput)", sp.GetInput().GetTypedConfig().GetTypeUrl())
	}
	if err := sp.GetInput().GetTypedConfig().UnmarshalTo(in); err != nil {
		return nil, err
	}
	vm := sp.GetValueMatch()
	if vm == nil || vm.GetIgnoreCase() {
		return nil, errors.New("only a case-sensitive value_match is supported by the bench")
	}
	m := &SkipMatcher{Header: strings.ToLower(in.GetHeaderName())}
	switch p := vm.GetMatchPattern().(type) {
	case *xdsmatcherv3.StringMatcher_Exact:
		m.Exact = p.Exact
	case *xdsmatcherv3.StringMatcher_Prefix:
		if p.Prefix == "" {
			return nil, errors.New("empty prefix")
		}
		m.Prefix = p.Prefix
	default:
		return nil, fmt.Errorf("string matcher %T is not supported by the bench (only exact and prefix)", p)
	}
	act := fm.GetOnMatch().GetAction()
	if act == nil || fm.GetOnMatch().GetKeepMatching() {
		return nil, errors.New("on_match must be a single action")
	}
	if !act.GetTypedConfig().MessageIs(&skipv3.SkipFilter{}) {
		return nil, fmt.Errorf("on_match action %s is not supported by the bench (only SkipFilter)", act.GetTypedConfig().GetTypeUrl())
	}
	return m, nil
}

// filterShape turns a processing mode into the phases sent. The bench plays
// SEND/SKIP headers and BUFFERED/NONE bodies; anything else (STREAMED
// bodies, trailers) is refused rather than approximated.
func filterShape(where string, ep *extprocfilterv3.ExternalProcessor) (Filter, error) {
	f := Filter{
		Where:              where,
		InitialMetadata:    map[string]string{},
		RequestAttributes:  ep.GetRequestAttributes(),
		ResponseAttributes: ep.GetResponseAttributes(),
	}
	for _, h := range ep.GetGrpcService().GetInitialMetadata() {
		f.InitialMetadata[h.GetKey()] = h.GetValue()
	}
	if mo := ep.GetMetadataOptions(); mo != nil {
		f.ForwardingNamespaces = mo.GetForwardingNamespaces().GetUntyped()
		f.ReceivingNamespaces = mo.GetReceivingNamespaces().GetUntyped()
	}
	pm := ep.GetProcessingMode()
	f.mode = pm
	var err error
	add := func(dst *[]Phase, hdr extprocfilterv3.ProcessingMode_HeaderSendMode, body extprocfilterv3.ProcessingMode_BodySendMode, hp, bp Phase) {
		switch hdr {
		case extprocfilterv3.ProcessingMode_SEND, extprocfilterv3.ProcessingMode_DEFAULT:
			// DEFAULT means SEND for headers.
			*dst = append(*dst, hp)
		case extprocfilterv3.ProcessingMode_SKIP:
		default:
			err = errors.Join(err, fmt.Errorf("%s: %s mode %s not supported by the bench", where, hp, hdr))
		}
		switch body {
		case extprocfilterv3.ProcessingMode_BUFFERED:
			*dst = append(*dst, bp)
		case extprocfilterv3.ProcessingMode_NONE:
		default:
			err = errors.Join(err, fmt.Errorf("%s: %s mode %s not supported by the bench", where, bp, body))
		}
	}
	add(&f.RequestPhases, pm.GetRequestHeaderMode(), pm.GetRequestBodyMode(), RequestHeaders, RequestBody)
	add(&f.ResponsePhases, pm.GetResponseHeaderMode(), pm.GetResponseBodyMode(), ResponseHeaders, ResponseBody)
	for _, t := range []extprocfilterv3.ProcessingMode_HeaderSendMode{pm.GetRequestTrailerMode(), pm.GetResponseTrailerMode()} {
		if t != extprocfilterv3.ProcessingMode_SKIP && t != extprocfilterv3.ProcessingMode_DEFAULT {
			err = errors.Join(err, fmt.Errorf("%s: trailer mode %s not supported by the bench", where, t))
		}
	}
	return f, err
}

// checkPerRoute refuses any per-filter config for ext_proc or
// match_delegate on a virtual host or route: no route Weir renders has
// one, and the bench does not model overrides.
func checkPerRoute(rc *routev3.RouteConfiguration) error {
	bad := func(m map[string]*anypb.Any) string {
		for _, n := range []string{xds.FilterExtProc, xds.MatchDelegate} {
			if _, ok := m[n]; ok {
				return n
			}
		}
		return ""
	}
	for _, vh := range rc.GetVirtualHosts() {
		if n := bad(vh.GetTypedPerFilterConfig()); n != "" {
			return fmt.Errorf("virtual host %q overrides %s; the bench does not model per-route overrides", vh.GetName(), n)
		}
		for _, r := range vh.GetRoutes() {
			if n := bad(r.GetTypedPerFilterConfig()); n != "" {
				return fmt.Errorf("route %q overrides %s; the bench does not model per-route overrides", r.GetName(), n)
			}
		}
	}
	return nil
}
