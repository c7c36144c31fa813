package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

// Driver plays one request's ext_proc messages, as Envoy would send them
// for Shape, against any ExternalProcessor client.
type Driver struct {
	Shape   *Shape
	Profile *Profile
	// Strict validates Weir's replies (routing, translation, metadata).
	// Without it only the reply type is checked, for the null floor.
	Strict bool

	routerMD, upstreamMD metadata.MD
	respHeaders          *corev3.HeaderMap
	// reqHeaders is the client request's header map as the router-level
	// filter sees it; x-request-id is set per request.
	reqHeaders *Headers
}

// Error is a failed request. Key groups errors for counting; it never
// holds per-request values.
type Error struct {
	Key    string
	Detail string
}

func (e *Error) Error() string { return e.Key + ": " + e.Detail }

func fail(key, format string, args ...any) error {
	return &Error{Key: key, Detail: fmt.Sprintf(format, args...)}
}

// NewDriver checks that every attribute the shape declares is one the
// bench can evaluate, and precomputes the per-stream gRPC metadata.
func NewDriver(s *Shape, p *Profile, strict bool) (*Driver, error) {
	d := &Driver{Shape: s, Profile: p, Strict: strict}
	for _, f := range []*Filter{&s.Router, &s.Upstream} {
		for _, a := range slices.Concat(f.RequestAttributes, f.ResponseAttributes) {
			if _, _, err := d.attr(a, "x"); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Where, err)
			}
		}
	}
	// What Envoy 1.37 hands the router-level filter for an OpenAI SDK
	// request on a plain-HTTP listener: pseudo-headers, the client's
	// headers, then the ones the HCM adds (x-forwarded-for,
	// x-forwarded-proto, x-request-id).
	d.reqHeaders = NewHeaders(
		":authority", "weir.bench:8080", ":path", ChatPath, ":method", "POST", ":scheme", "http",
		"user-agent", "OpenAI/Python 1.82.0", "content-type", "application/json",
		"content-length", strconv.Itoa(len(p.RequestBody)), "authorization", "Bearer "+p.ClientKey,
		"x-forwarded-for", "10.0.0.7", "x-forwarded-proto", "http", config.HeaderRequestID, RequestID(0),
	)
	d.routerMD = metadata.New(s.Router.InitialMetadata)
	d.upstreamMD = metadata.New(s.Upstream.InitialMetadata)
	d.respHeaders = headerMap(
		":status", "200",
		"content-type", "application/json",
		"content-length", strconv.Itoa(len(p.ResponseBody)),
		"date", "Tue, 11 Mar 2025 10:12:32 GMT",
		"x-envoy-upstream-service-time", "812",
	)
	switch p.Provider {
	case "openai":
		d.respHeaders.Headers = append(d.respHeaders.Headers, headerMap(
			"openai-organization", "org-bench", "openai-processing-ms", "790", "openai-version", "2020-10-01",
			"x-ratelimit-limit-requests", "10000", "x-ratelimit-remaining-requests", "9999",
			"x-request-id", "req_5c0b7bd3b1d0c8a1f4e5b2a9c6d7e8f0",
		).Headers...)
	case "anthropic":
		d.respHeaders.Headers = append(d.respHeaders.Headers, headerMap(
			"anthropic-organization-id", "org-bench", "request-id", "req_011CQjvFzkNVv8aQ6Lh7gHxW",
			"anthropic-ratelimit-requests-limit", "4000", "anthropic-ratelimit-requests-remaining", "3999",
			"anthropic-ratelimit-requests-reset", "2025-03-11T10:12:33Z",
		).Headers...)
	case "bedrock":
		d.respHeaders.Headers = append(d.respHeaders.Headers, headerMap(
			"x-amzn-requestid", "3f1c8a52-7e0b-4d7a-9c61-0b5e2d4f8a17", "connection", "keep-alive",
		).Headers...)
	case "gemini":
		d.respHeaders.Headers = append(d.respHeaders.Headers, headerMap(
			"vary", "Origin, X-Origin, Referer", "server", "scaffolding on HTTPServer2",
			"x-xss-protection", "0", "x-frame-options", "SAMEORIGIN", "x-content-type-options", "nosniff",
			"server-timing", "gfet4t7; dur=790", "alt-svc", `h3=":443"; ma=2592000,h3-29=":443"; ma=2592000`,
		).Headers...)
	}
	return d, nil
}

// attr evaluates an attribute expression the way Envoy would for the
// bench's request. ok is false for a header the request does not carry
// (Envoy omits it from the map).
func (d *Driver) attr(expr, id string) (string, bool, error) {
	switch expr {
	case config.AttrHostBackend:
		return d.Profile.Backend, true, nil
	}
	return "", false, fmt.Errorf("attribute %q is declared but the bench cannot evaluate it", expr)
}

func (d *Driver) attributes(exprs []string, id string) map[string]*structpb.Struct {
	if len(exprs) == 0 {
		return nil
	}
	f := make(map[string]*structpb.Value, len(exprs))
	for _, e := range exprs {
		if v, ok, _ := d.attr(e, id); ok {
			f[e] = structpb.NewStringValue(v)
		}
	}
	return map[string]*structpb.Struct{xds.FilterExtProc: {Fields: f}}
}

func headerMap(kv ...string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return hm
}

// message builds the ProcessingRequest for one phase. first marks the
// stream's first message (it carries protocol_config); firstInDir the
// first of its direction (it carries that direction's attributes). hdrs is
// the request header map as it stands when the filter runs.
func (d *Driver) message(f *Filter, ph Phase, first, firstInDir bool, id string, body []byte, hdrs *Headers, mdctx *corev3.Metadata) *extprocv3.ProcessingRequest {
	req := &extprocv3.ProcessingRequest{MetadataContext: mdctx}
	if first {
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  f.mode.GetRequestBodyMode(),
			ResponseBodyMode: f.mode.GetResponseBodyMode(),
		}
	}
	switch ph {
	case RequestHeaders:
		// A body follows, so end_of_stream is false.
		req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdrs.Proto()}}
	case RequestBody:
		req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}
	case ResponseHeaders:
		req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: d.respHeaders}}
	case ResponseBody:
		req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}
	}
	if firstInDir {
		if ph == RequestHeaders || ph == RequestBody {
			req.Attributes = d.attributes(f.RequestAttributes, id)
		} else {
			req.Attributes = d.attributes(f.ResponseAttributes, id)
		}
	}
	return req
}

// expectedMetadata is the weir.dev dynamic metadata the router-level reply
// must carry. The null floor forwards exactly this, so both servers get
// upstream messages of the same size.
func (d *Driver) expectedMetadata(id string) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		config.MetaBackend:   structpb.NewStringValue(d.Profile.Backend),
		config.MetaModel:     structpb.NewStringValue(d.Profile.UpstreamModel),
		config.MetaEndpoint:  structpb.NewStringValue("chat"),
		config.MetaRequestID: structpb.NewStringValue(id),
	}}
}

// requestHeaders is the client request's header map for request id.
func (d *Driver) requestHeaders(id string) *Headers {
	h := d.reqHeaders.Clone()
	h.Set(config.HeaderRequestID, id)
	return h
}

// expectedUpstreamHeaders is the header map the upstream filter's matcher
// sees when the router-level reply routed as Weir must: x-weir-backend
// names the backend. The null floor's (empty) replies route nothing, so
// the floor plays the upstream filter exactly when it would run for Weir.
func (d *Driver) expectedUpstreamHeaders(h *Headers) *Headers {
	h.Set(config.HeaderBackend, d.Profile.Backend)
	return h
}

// UpstreamRuns says whether the upstream-level filter runs for a request
// the router-level reply routed as Weir must (false when the
// match_delegate skips it, Weir's common case).
func (d *Driver) UpstreamRuns() bool {
	return d.Shape.UpstreamRuns(d.expectedUpstreamHeaders(d.requestHeaders(RequestID(0))))
}

// Sizes returns the wire size in bytes of each message of one request, in
// the order sent, keyed "router request_body" and so on.
func (d *Driver) Sizes() []MessageSize {
	id := RequestID(0)
	hdrs := d.requestHeaders(id)
	var out []MessageSize
	add := func(level string, f *Filter, phases []Phase, firstDir bool, body []byte, md *corev3.Metadata) {
		for i, ph := range phases {
			m := d.message(f, ph, firstDir && i == 0, i == 0, id, body, hdrs, md)
			out = append(out, MessageSize{Filter: level, Phase: ph, Bytes: proto.Size(m)})
		}
	}
	add("router", &d.Shape.Router, d.Shape.Router.RequestPhases, true, d.Profile.RequestBody, nil)
	if d.UpstreamRuns() {
		hdrs = d.expectedUpstreamHeaders(hdrs)
		add("upstream", &d.Shape.Upstream, d.Shape.Upstream.RequestPhases, true, d.Profile.RequestBody, d.forward(nil, id))
		add("upstream", &d.Shape.Upstream, d.Shape.Upstream.ResponsePhases, len(d.Shape.Upstream.RequestPhases) == 0, d.Profile.ResponseBody, d.forward(nil, id))
	}
	add("router", &d.Shape.Router, d.Shape.Router.ResponsePhases, false, d.Profile.ResponseBody, nil)
	return out
}

// MessageSize is one message's protobuf size.
type MessageSize struct {
	Filter string `json:"filter"`
	Phase  Phase  `json:"phase"`
	Bytes  int    `json:"bytes"`
}

// RequestID is the x-request-id of the n-th request: UUID-shaped like
// Envoy's, fixed width so every request has the same message sizes.
func RequestID(n uint64) string {
	return fmt.Sprintf("b3c4e5f6-0000-4000-8000-%012d", n%1_000_000_000_000)
}

// forward builds the upstream filter's metadata_context: each forwarding
// namespace the router-level reply wrote (and the router filter accepts).
// With got nil (null floor) it forwards the metadata Weir would have sent.
func (d *Driver) forward(got *structpb.Struct, id string) *corev3.Metadata {
	if len(d.Shape.Upstream.ForwardingNamespaces) == 0 {
		return nil
	}
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	for _, ns := range d.Shape.Upstream.ForwardingNamespaces {
		if !slices.Contains(d.Shape.Router.ReceivingNamespaces, ns) {
			continue
		}
		if got != nil {
			if v := got.GetFields()[ns].GetStructValue(); v != nil {
				md.FilterMetadata[ns] = v
			}
		} else if ns == config.MetadataNamespace {
			md.FilterMetadata[ns] = d.expectedMetadata(id)
		}
	}
	return md
}

// Do plays one request: the router-level request phases on one stream,
// applying each reply's header and body mutation as Envoy would; then, if
// the upstream filter's match_delegate does not skip it for the headers
// as they now stand, the upstream-level phases on a second stream; then
// the router-level response phases. Every reply is checked.
func (d *Driver) Do(ctx context.Context, c extprocv3.ExternalProcessorClient, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := d.Profile
	rs, err := c.Process(metadata.NewOutgoingContext(ctx, d.routerMD))
	if err != nil {
		return fail("router: open stream", "%v", err)
	}
	hdrs := d.requestHeaders(id)
	body := p.RequestBody
	var dyn *structpb.Struct
	for i, ph := range d.Shape.Router.RequestPhases {
		resp, err := roundTrip(rs, d.message(&d.Shape.Router, ph, i == 0, i == 0, id, body, hdrs, nil), "router", ph)
		if err != nil {
			return err
		}
		if err := checkType(ph, resp, "router"); err != nil {
			return err
		}
		cr := replyCommon(resp)
		if err := hdrs.Apply(cr.GetHeaderMutation()); err != nil {
			return fail("router "+string(ph)+": bad header mutation", "%v", err)
		}
		bm := cr.GetBodyMutation().GetBody()
		if bm != nil {
			body = bm
		}
		if d.Strict {
			if err := d.checkRouterRequest(ph, resp, id, hdrs, body); err != nil {
				return err
			}
		}
		if resp.GetDynamicMetadata() != nil {
			dyn = resp.GetDynamicMetadata()
		}
	}
	if !d.Strict {
		// The null server routes nothing and writes no metadata: stand in
		// for Weir's routing header and forward Weir's metadata.
		dyn = nil
		hdrs = d.expectedUpstreamHeaders(hdrs)
	}

	up := d.Shape.Upstream
	if d.Shape.UpstreamRuns(hdrs) && len(up.RequestPhases)+len(up.ResponsePhases) > 0 {
		us, err := c.Process(metadata.NewOutgoingContext(ctx, d.upstreamMD))
		if err != nil {
			return fail("upstream: open stream", "%v", err)
		}
		mdctx := d.forward(dyn, id)
		for i, ph := range up.RequestPhases {
			resp, err := roundTrip(us, d.message(&up, ph, i == 0, i == 0, id, body, hdrs, mdctx), "upstream", ph)
			if err != nil {
				return err
			}
			if err := checkType(ph, resp, "upstream"); err != nil {
				return err
			}
			cr := replyCommon(resp)
			if err := hdrs.Apply(cr.GetHeaderMutation()); err != nil {
				return fail("upstream "+string(ph)+": bad header mutation", "%v", err)
			}
			if bm := cr.GetBodyMutation().GetBody(); bm != nil {
				body = bm
			}
			if d.Strict {
				if err := d.checkUpstreamRequest(ph, resp, hdrs, body); err != nil {
					return err
				}
			}
		}
		for i, ph := range up.ResponsePhases {
			first := len(up.RequestPhases) == 0 && i == 0
			resp, err := roundTrip(us, d.message(&up, ph, first, i == 0, id, p.ResponseBody, hdrs, mdctx), "upstream", ph)
			if err != nil {
				return err
			}
			if err := checkType(ph, resp, "upstream"); err != nil {
				return err
			}
		}
		if err := closeStream(us, "upstream"); err != nil {
			return err
		}
	}

	for i, ph := range d.Shape.Router.ResponsePhases {
		resp, err := roundTrip(rs, d.message(&d.Shape.Router, ph, false, i == 0, id, p.ResponseBody, hdrs, nil), "router", ph)
		if err != nil {
			return err
		}
		if err := d.checkRouterResponse(ph, resp); err != nil {
			return err
		}
	}
	return closeStream(rs, "router")
}

func roundTrip(s extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest, level string, ph Phase) (*extprocv3.ProcessingResponse, error) {
	if err := s.Send(req); err != nil {
		if errors.Is(err, io.EOF) {
			// The server ended the stream; Recv has the status.
			_, err = s.Recv()
		}
		return nil, fail(level+" "+string(ph)+": send", "%v", err)
	}
	resp, err := s.Recv()
	if err != nil {
		return nil, fail(level+" "+string(ph)+": recv", "%v", err)
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		return nil, fail(level+" "+string(ph)+": immediate response "+strconv.Itoa(int(ir.GetStatus().GetCode())), "%s", ir.GetBody())
	}
	return resp, nil
}

// closeStream half-closes and waits for the server to end the stream.
func closeStream(s extprocv3.ExternalProcessor_ProcessClient, level string) error {
	if err := s.CloseSend(); err != nil {
		return fail(level+": close", "%v", err)
	}
	resp, err := s.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fail(level+": end of stream", "%v", err)
	}
	return fail(level+": unexpected extra reply", "%v", resp)
}

func replyCommon(r *extprocv3.ProcessingResponse) *extprocv3.CommonResponse {
	switch {
	case r.GetRequestHeaders() != nil:
		return r.GetRequestHeaders().GetResponse()
	case r.GetRequestBody() != nil:
		return r.GetRequestBody().GetResponse()
	case r.GetResponseHeaders() != nil:
		return r.GetResponseHeaders().GetResponse()
	case r.GetResponseBody() != nil:
		return r.GetResponseBody().GetResponse()
	}
	return nil
}

// checkType is the only check for the null floor: the reply answers the
// phase that was sent.
func checkType(ph Phase, r *extprocv3.ProcessingResponse, level string) error {
	var ok bool
	switch ph {
	case RequestHeaders:
		ok = r.GetRequestHeaders() != nil
	case RequestBody:
		ok = r.GetRequestBody() != nil
	case ResponseHeaders:
		ok = r.GetResponseHeaders() != nil
	case ResponseBody:
		ok = r.GetResponseBody() != nil
	}
	if !ok {
		return fail(level+" "+string(ph)+": wrong reply type", "%T", r.GetResponse())
	}
	return nil
}

func setHeaders(c *extprocv3.CommonResponse) map[string]string {
	out := map[string]string{}
	for _, h := range c.GetHeaderMutation().GetSetHeaders() {
		v := string(h.GetHeader().GetRawValue())
		if v == "" {
			v = h.GetHeader().GetValue()
		}
		out[h.GetHeader().GetKey()] = v
	}
	return out
}

// clientCredentialHeaders are the headers a client may carry its key in;
// a reply that prepares the upstream request must remove (or set) each.
var clientCredentialHeaders = []string{"authorization", "x-api-key", "api-key", "x-goog-api-key"}

// checkRouterRequest validates Weir's router-level replies: an empty
// HeadersResponse to request_headers; for request_body the routing header,
// clear_route_cache, the weir.dev metadata, and the upstream request it
// prepared (hdrs and body after the reply was applied).
func (d *Driver) checkRouterRequest(ph Phase, r *extprocv3.ProcessingResponse, id string, hdrs *Headers, body []byte) error {
	switch ph {
	case RequestHeaders:
		if proto.Size(r) != proto.Size(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}) {
			return fail("router request_headers: reply not empty", "%v", r)
		}
		return nil
	case RequestBody:
	default:
		return nil
	}
	c := replyCommon(r)
	if got := setHeaders(c)[config.HeaderBackend]; got != d.Profile.Backend {
		return fail("router request_body: wrong "+config.HeaderBackend, "got %q, want %q", got, d.Profile.Backend)
	}
	if !c.GetClearRouteCache() {
		return fail("router request_body: clear_route_cache not set", "")
	}
	md := r.GetDynamicMetadata().GetFields()[config.MetadataNamespace].GetStructValue()
	want := d.expectedMetadata(id)
	for k, v := range want.GetFields() {
		if got := md.GetFields()[k].GetStringValue(); got != v.GetStringValue() {
			return fail("router request_body: wrong metadata "+k, "got %q, want %q", got, v.GetStringValue())
		}
	}
	return d.checkPrepared("router request_body", c, hdrs, body)
}

// checkUpstreamRequest validates an upstream-level reply, which only runs
// when the match_delegate does not skip the filter: an empty reply to
// request_headers; for request_body the request it prepared.
func (d *Driver) checkUpstreamRequest(ph Phase, r *extprocv3.ProcessingResponse, hdrs *Headers, body []byte) error {
	switch ph {
	case RequestHeaders:
		if r.GetRequestHeaders().GetResponse().GetHeaderMutation() != nil || r.GetRequestHeaders().GetResponse().GetBodyMutation() != nil {
			return fail("upstream request_headers: reply not empty", "%v", r)
		}
		return nil
	case RequestBody:
		return d.checkPrepared("upstream request_body", replyCommon(r), hdrs, body)
	}
	return nil
}

// checkPrepared checks a reply c that prepares the upstream request, and
// the request it leaves (hdrs, body: after the reply was applied): :path,
// :authority, the backend credential (SigV4 for bedrock), no client
// credential, content-length equal to the body's length (and set by the
// reply when it replaces the body), and the body translated or left alone.
func (d *Driver) checkPrepared(where string, c *extprocv3.CommonResponse, hdrs *Headers, body []byte) error {
	p := d.Profile
	h := setHeaders(c)
	if h[":path"] != p.UpstreamPath {
		return fail(where+": wrong :path", "got %q, want %q", h[":path"], p.UpstreamPath)
	}
	if h[":authority"] != p.Authority {
		return fail(where+": wrong :authority", "got %q, want %q", h[":authority"], p.Authority)
	}
	if p.SigV4 {
		// SigV4: "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/bedrock/aws4_request, SignedHeaders=..., Signature=<64 hex>".
		a := h["authorization"]
		if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential="+p.AccessKeyID+"/") ||
			!strings.Contains(a, "/"+p.Region+"/bedrock/aws4_request, SignedHeaders=") ||
			len(a) < 64 || !isHex(a[len(a)-64:]) || h["x-amz-date"] == "" {
			return fail(where+": not SigV4-signed", "authorization %q, x-amz-date %q", a, h["x-amz-date"])
		}
	}
	if p.Credential != "" {
		found := false
		for _, v := range h {
			found = found || v == p.Credential || v == "Bearer "+p.Credential
		}
		if !found {
			return fail(where+": backend credential not set", "set headers %v", keys(h))
		}
	}
	// The reply removes the headers the client sent that the provider may
	// not get (an allow-list), so what matters is what the upstream
	// request is left with: no client credential header unless the reply
	// set it (the backend's own credential).
	for _, k := range clientCredentialHeaders {
		if _, left := hdrs.Get(k); left {
			if _, set := h[k]; !set {
				return fail(where+": client credential header not removed", "%s left on the upstream request", k)
			}
		}
	}
	for _, e := range hdrs.kv {
		if strings.Contains(e.v, p.ClientKey) {
			return fail(where+": client credential forwarded", "in %s", e.k)
		}
	}
	bm := c.GetBodyMutation().GetBody()
	if err := d.checkBody(where, bm); err != nil {
		return err
	}
	// Envoy checks a content-length the request keeps against the buffered
	// body; a reply that replaces the body must set it. Without a body
	// change the reply may drop it (Envoy then frames the body itself).
	if cl, ok := hdrs.Get("content-length"); (ok || bm != nil) && cl != strconv.Itoa(len(body)) {
		return fail(where+": wrong content-length", "upstream request has %q, body is %d bytes", cl, len(body))
	}
	return nil
}

// checkBody checks a reply's request body mutation bm: the provider's
// request for a translated config, none for passthrough.
func (d *Driver) checkBody(where string, bm []byte) error {
	p := d.Profile
	switch {
	case p.RewriteRequest && bm == nil:
		return fail(where+": body not translated", "no body mutation")
	case !p.RewriteRequest && bm != nil:
		return fail(where+": passthrough body was rewritten", "%d bytes", len(bm))
	case bm == nil:
		return nil
	}
	if !gjson.ValidBytes(bm) {
		return fail(where+": translated body is not JSON", "%.200s", bm)
	}
	switch p.Provider {
	case "bedrock", "gemini":
		// The model is in the path, checked above.
	default:
		if m := gjson.GetBytes(bm, "model").Str; m != p.UpstreamModel {
			return fail(where+": wrong upstream model", "got %q, want %q", m, p.UpstreamModel)
		}
	}
	switch p.Provider {
	case "anthropic":
		if gjson.GetBytes(bm, "system").Raw == "" || gjson.GetBytes(bm, "messages.#").Int() != 3 || gjson.GetBytes(bm, "max_tokens").Int() != 512 {
			return fail(where+": not an Anthropic Messages request", "%.300s", bm)
		}
	case "bedrock":
		if gjson.GetBytes(bm, "system.0.text").Str == "" || gjson.GetBytes(bm, "messages.#").Int() != 3 ||
			gjson.GetBytes(bm, "messages.0.content.0.text").Str == "" || gjson.GetBytes(bm, "inferenceConfig.maxTokens").Int() != 512 {
			return fail(where+": not a Bedrock Converse request", "%.300s", bm)
		}
	case "gemini":
		if gjson.GetBytes(bm, "systemInstruction.parts.0.text").Str == "" || gjson.GetBytes(bm, "contents.#").Int() != 3 ||
			gjson.GetBytes(bm, "contents.1.role").Str != "model" || gjson.GetBytes(bm, "generationConfig.maxOutputTokens").Int() != 512 {
			return fail(where+": not a Gemini generateContent request", "%.300s", bm)
		}
	}
	return nil
}

func (d *Driver) checkRouterResponse(ph Phase, r *extprocv3.ProcessingResponse) error {
	if err := checkType(ph, r, "router"); err != nil || !d.Strict || ph != ResponseBody {
		return err
	}
	return checkResponseBody(d.Profile, r, true)
}

// checkResponseBody: for a translated config a chat.completion with the
// answer and usage, and its content-length (required when needCL, else
// checked if set); for passthrough no body mutation.
func checkResponseBody(p *Profile, r *extprocv3.ProcessingResponse, needCL bool) error {
	c := replyCommon(r)
	bm := c.GetBodyMutation().GetBody()
	switch {
	case p.RewriteResponse && bm == nil:
		return fail("router response_body: body not translated", "no body mutation")
	case !p.RewriteResponse && bm != nil:
		return fail("router response_body: passthrough body was rewritten", "%.200s", bm)
	case bm == nil:
		return nil
	}
	j := gjson.ParseBytes(bm)
	switch {
	case !gjson.ValidBytes(bm) || j.Get("object").Str != "chat.completion":
		return fail("router response_body: not a chat.completion", "%.300s", bm)
	case j.Get("choices.0.message.content").Str != answer:
		return fail("router response_body: wrong content", "%.300s", bm)
	case j.Get("usage.prompt_tokens").Int() != PromptTokens || j.Get("usage.completion_tokens").Int() != CompletionTokens:
		return fail("router response_body: wrong usage", "%s", j.Get("usage").Raw)
	}
	if cl := setHeaders(c)["content-length"]; (needCL || cl != "") && cl != strconv.Itoa(len(bm)) {
		return fail("router response_body: wrong content-length", "got %q, want %d", cl, len(bm))
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
