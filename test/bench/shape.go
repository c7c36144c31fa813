// Package bench plays Envoy's two ext_proc filters against an extproc over
// gRPC. The message shape (which phases are sent, which attributes ride on
// them, which metadata namespaces are forwarded) is read from the Envoy
// resources xds.Build renders for a config, never hard-coded, so the bench
// follows extproc/DESIGN.md as it changes.
package bench

import (
	"errors"
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

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
}

// ShapeFromXDS renders cfg with xds.Build and reads the router-level
// ext_proc filter from the listener's HTTP filters and the upstream-level
// one from backend's cluster. path is the request path, checked against
// per-route ext_proc overrides.
func ShapeFromXDS(cfg *config.Config, backend, path string) (*Shape, error) {
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
	rf, err := findExtProc(hcm.GetHttpFilters())
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	if s.Router, err = filterShape("listener "+res.Listeners[0].GetName()+" http_filters", rf); err != nil {
		return nil, err
	}
	if err := checkPerRoute(hcm.GetRouteConfig(), path); err != nil {
		return nil, err
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
		uf, err := findExtProc(po.GetHttpFilters())
		if err != nil {
			return nil, fmt.Errorf("cluster %s upstream filters: %w", cname, err)
		}
		if s.Upstream, err = filterShape("cluster "+cname+" upstream http_filters", uf); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("xds.Build rendered no cluster %s", cname)
}

func findExtProc(fs []*hcmv3.HttpFilter) (*extprocfilterv3.ExternalProcessor, error) {
	for _, f := range fs {
		if f.GetName() != xds.FilterExtProc {
			continue
		}
		ep := &extprocfilterv3.ExternalProcessor{}
		if err := f.GetTypedConfig().UnmarshalTo(ep); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", xds.FilterExtProc, err)
		}
		return ep, nil
	}
	return nil, fmt.Errorf("no %s filter", xds.FilterExtProc)
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

// checkPerRoute refuses a route config whose ext_proc per-route override
// would apply to path: the bench does not model overrides.
func checkPerRoute(rc *routev3.RouteConfiguration, path string) error {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if _, ok := r.GetTypedPerFilterConfig()[xds.FilterExtProc]; !ok {
				continue
			}
			m := r.GetMatch()
			if p := m.GetPrefix(); p != "" && strings.HasPrefix(path, p) {
				return fmt.Errorf("route %q overrides %s for %s; the bench does not model per-route overrides", r.GetName(), xds.FilterExtProc, path)
			}
			if p := m.GetPath(); p != "" && p == path {
				return fmt.Errorf("route %q overrides %s for %s; the bench does not model per-route overrides", r.GetName(), xds.FilterExtProc, path)
			}
		}
	}
	return nil
}
