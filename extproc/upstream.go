package extproc

import (
	"context"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
)

// upstreamStream handles one upstream attempt whose request headers were
// prepared for another backend than the attempt's. The generated config
// skips the upstream filter (match_delegate) while x-weir-backend names the
// attempt's backend, so this runs only when Envoy sends an attempt
// elsewhere: the router-level reply already prepared the common case.
//
// Envoy hands every attempt the same header map and replays the router's
// buffered body, which is the router-level reply's translation for the
// weir.dev "backend" metadata (upstream_request.cc acceptHeadersFromRouter,
// router.cc doRetry). The attempt's backend comes from the host's endpoint
// metadata, sent as an attribute on the request headers message.
type upstreamStream struct {
	s  *Server
	rt *runtime.Runtime
	// target is the attempt's backend, from the request headers message.
	target string
	id     string // request id, for logs
	// hdrs are the attempt's request headers: the map every attempt
	// shares, as the router-level reply and earlier attempts left it.
	hdrs *corev3.HeaderMap
}

func (u *upstreamStream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, string) {
	switch m := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		// Attributes ride on a direction's first message only
		// (ext_proc.cc addAttributes).
		u.target = hostBackend(req)
		u.hdrs = m.RequestHeaders.GetHeaders()
		u.id = req.GetMetadataContext().GetFilterMetadata()[config.MetadataNamespace].GetFields()[config.MetaRequestID].GetStringValue()
		return headersResponse(), "request_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		md := req.GetMetadataContext().GetFilterMetadata()[config.MetadataNamespace].GetFields()
		resp, err := u.requestBody(ctx, md, m.RequestBody)
		if err != nil {
			id := md[config.MetaRequestID].GetStringValue()
			if _, ok := errs.KindOf(err); !ok {
				u.s.log.Error("upstream translation failed", "request_id", id, "error", err)
			}
			u.s.logCredential(id, err)
			return immediate(err, id), "request_body"
		}
		return resp, "request_body"
	}
	return nil, "unexpected"
}

// errRetranslate refuses an attempt whose body cannot be translated again:
// only an OpenAI-shaped body is Weir's canonical request.
var errRetranslate = fmt.Errorf("%w: this attempt's backend needs the request in another provider's format", errs.ErrUpstream)

func (u *upstreamStream) requestBody(ctx context.Context, md map[string]*structpb.Value, hb *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if md == nil {
		return nil, fmt.Errorf("upstream filter: no %s metadata from the router-level filter", config.MetadataNamespace)
	}
	if u.target == "" {
		return nil, fmt.Errorf("upstream filter: no %s attribute on the request headers", config.AttrHostBackend)
	}
	be := u.rt.Backends[u.target]
	if be == nil {
		return nil, fmt.Errorf("upstream filter: backend %q is not configured", u.target)
	}
	// The body is the router-level reply's translation for this backend.
	from := u.rt.Backends[md[config.MetaBackend].GetStringValue()]
	if from == nil || from.Config.Provider != "openai" {
		return nil, errRetranslate
	}
	p, err := prepare(be, &provider.Request{
		Endpoint:    provider.ParseEndpoint(md[config.MetaEndpoint].GetStringValue()),
		Body:        hb.GetBody(),
		Model:       md[config.MetaModel].GetStringValue(),
		ClientModel: md[config.MetaClientModel].GetStringValue(),
		Stream:      md[config.MetaStream].GetStringValue() == "true",
		Ctx:         ctx,
	}, u.hdrs, be.BackendHeader)
	if err != nil {
		return nil, err
	}
	// prepare removed what this backend may not receive of the shared
	// map. Headers set for the other backend go too, even one this
	// backend's allow-list names: that value was Weir's, not the client's.
	// Pseudo-headers cannot be removed, and are set again anyway.
	for _, n := range strings.Split(md[config.MetaHeaders].GetStringValue(), ",") {
		if n != "" && !strings.HasPrefix(n, ":") && !setsHeader(p, n) && !contains(p.mut.RemoveHeaders, n) {
			p.mut.RemoveHeaders = append(p.mut.RemoveHeaders, n)
		}
	}
	return bodyResponse(p.common(), true), nil
}

func setsHeader(p *prepared, name string) bool {
	for _, h := range p.mut.GetSetHeaders() {
		if h.GetHeader().GetKey() == name {
			return true
		}
	}
	return false
}

func (u *upstreamStream) requestID() string { return u.id }

func (u *upstreamStream) internalError(err error) *extprocv3.ProcessingResponse {
	return immediate(err, u.id)
}
