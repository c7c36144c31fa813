package extproc

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
)

// prepared is a request made ready for one backend: the header mutation
// and the body that replace the client's.
type prepared struct {
	mut *extprocv3.HeaderMutation
	// body is the translated body; nil keeps the body Envoy holds.
	body []byte
	// names lists the headers set for the backend (comma-separated), so a
	// later attempt for another backend can remove them.
	names string
}

// prepare translates req for be: path, authority, credentials, provider
// headers, and the body with its content-length. extra headers are set
// first (x-weir-backend at the router level). Every header of hm (the
// request headers Envoy holds) that be may not receive is removed (see
// [requestRemovals]). Either filter level applies the result in a body
// reply while Envoy still holds the request headers (request_header_mode
// SEND with a BUFFERED body), so every mutation lands.
func prepare(be *runtime.Backend, pr *provider.Request, hm *corev3.HeaderMap, extra ...*corev3.HeaderValueOption) (*prepared, error) {
	up, err := be.Translator.TranslateRequest(pr)
	if err != nil {
		return nil, err
	}
	set := make([]*corev3.HeaderValueOption, 0, len(extra)+2+len(be.UpstreamHeaders)+len(up.Headers))
	set = append(set, extra...)
	set = append(set, be.Header(":path", be.UpstreamPath(up.Path)))
	set = append(set, be.UpstreamHeaders...) // :authority, content-type, be.Headers
	for _, h := range up.Headers {
		set = append(set, be.Header(h.Key, h.Value))
	}
	if up.Body != nil {
		// BUFFERED with headers SEND keeps content-length and checks it
		// against the mutated body (processor_state.cc
		// handleBufferedBodyCallback, validateContentLength); set first,
		// it is what the check compares.
		set = append(set, setHeader("content-length", strconv.Itoa(len(up.Body))))
	}
	p := &prepared{
		mut:   &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: requestRemovals(hm, be, set)},
		body:  up.Body,
		names: be.HeaderNames,
	}
	if len(up.Headers) > 0 {
		var b strings.Builder
		b.WriteString(be.HeaderNames)
		for _, h := range up.Headers {
			b.WriteByte(',')
			b.WriteString(h.Key)
		}
		p.names = b.String()
	}
	return p, nil
}

// commonFor wraps a prepared request in a body reply's CommonResponse.
func (p *prepared) common() *extprocv3.CommonResponse {
	cr := &extprocv3.CommonResponse{HeaderMutation: p.mut}
	if p.body != nil {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: p.body}}
	}
	return cr
}

// headersResponse is the empty reply to a request_headers message: Envoy
// goes on holding the headers until the body reply (BUFFERED body mode).
func headersResponse() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{},
	}}
}

// hostBackend names the backend of the host of this attempt or response.
func hostBackend(req *extprocv3.ProcessingRequest) string {
	return attr(req, config.AttrHostBackend)
}
