package extproc

import (
	"context"
	"fmt"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
)

// upstreamStream handles one upstream attempt. Envoy opens a new stream for
// every attempt (retry or failover), so the request is translated afresh
// for whichever backend this attempt goes to.
type upstreamStream struct {
	s  *Server
	rt *runtime.Runtime
}

// Client headers that carry credentials: they must never reach a provider,
// which gets Weir's own credential instead.
var clientCredentialHeaders = []string{"authorization", "x-api-key", "api-key", "x-goog-api-key", config.HeaderBackend}

func (u *upstreamStream) handle(_ context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, string) {
	b, ok := req.Request.(*extprocv3.ProcessingRequest_RequestBody)
	if !ok {
		return nil, "unexpected"
	}
	resp, err := u.requestBody(req, b.RequestBody)
	if err != nil {
		md := req.GetMetadataContext().GetFilterMetadata()[config.MetadataNamespace]
		id := md.GetFields()[config.MetaRequestID].GetStringValue()
		if _, ok := errs.KindOf(err); !ok {
			u.s.log.Error("upstream translation failed", "request_id", id, "error", err)
		}
		return immediate(err, id), "request_body"
	}
	return resp, "request_body"
}

func (u *upstreamStream) requestBody(req *extprocv3.ProcessingRequest, hb *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	md := req.GetMetadataContext().GetFilterMetadata()[config.MetadataNamespace].GetFields()
	if md == nil {
		return nil, fmt.Errorf("upstream filter: no %s metadata from the router-level filter", config.MetadataNamespace)
	}
	// The host Envoy picked for this attempt is authoritative: with
	// priority failover it differs from the router's first choice.
	name := attr(req, config.AttrHostBackend)
	if name == "" {
		name = md[config.MetaBackend].GetStringValue()
	}
	be := u.rt.Backends[name]
	if be == nil {
		return nil, fmt.Errorf("upstream filter: backend %q is not configured", name)
	}
	body := hb.GetBody()
	pr := provider.Request{
		Endpoint:    provider.ParseEndpoint(md[config.MetaEndpoint].GetStringValue()),
		Body:        body,
		Model:       md[config.MetaModel].GetStringValue(),
		ClientModel: md[config.MetaClientModel].GetStringValue(),
		Stream:      md[config.MetaStream].GetStringValue() == "true",
	}
	up, err := be.Translator.TranslateRequest(&pr)
	if err != nil {
		return nil, err
	}
	set := make([]*corev3.HeaderValueOption, 0, 1+len(be.UpstreamHeaders)+len(up.Headers))
	set = append(set, setHeader(":path", be.UpstreamPath(up.Path)))
	set = append(set, be.UpstreamHeaders...) // :authority, content-type, be.Headers
	for _, h := range up.Headers {
		set = append(set, setHeader(h.Key, h.Value))
	}
	// Remove only what is not also set, so the result does not depend on
	// the order Envoy applies removals and sets in. Without a clash the
	// shared list is sent as is (never modified).
	remove := clientCredentialHeaders
	for i, h := range clientCredentialHeaders {
		if isSet(up.Headers, h) {
			remove = make([]string, 0, len(clientCredentialHeaders))
			remove = append(remove, clientCredentialHeaders[:i]...)
			for _, h := range clientCredentialHeaders[i+1:] {
				if !isSet(up.Headers, h) {
					remove = append(remove, h)
				}
			}
			break
		}
	}
	common := &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}}
	n := len(body)
	if up.Body != nil {
		common.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: up.Body}}
		n = len(up.Body)
	}
	resp := bodyResponse(common, true)
	// Envoy drops content-length for a BUFFERED body whose headers were not
	// sent; the upstream header_mutation filter restores it from here.
	resp.DynamicMetadata = namespaced(stringStruct(config.MetaContentLength, strconv.Itoa(n)))
	return resp, nil
}

func isSet(hs []provider.Header, name string) bool {
	for _, h := range hs {
		if h.Key == name {
			return true
		}
	}
	return false
}
