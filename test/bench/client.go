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
// first of its direction (it carries that direction's attributes).
func (d *Driver) message(f *Filter, ph Phase, first, firstInDir bool, id string, body []byte, mdctx *corev3.Metadata) *extprocv3.ProcessingRequest {
	req := &extprocv3.ProcessingRequest{MetadataContext: mdctx}
	if first {
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  f.mode.GetRequestBodyMode(),
			ResponseBodyMode: f.mode.GetResponseBodyMode(),
		}
	}
	switch ph {
	case RequestHeaders:
		req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(
			":method", "POST", ":path", ChatPath, ":authority", "weir.bench", ":scheme", "https",
			"content-type", "application/json", "authorization", "Bearer "+d.Profile.ClientKey,
			"content-length", strconv.Itoa(len(body)), "x-request-id", id,
		)}}
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

// Sizes returns the wire size in bytes of each message of one request, in
// the order sent, keyed "router request_body" and so on.
func (d *Driver) Sizes() []MessageSize {
	id := RequestID(0)
	var out []MessageSize
	add := func(level string, f *Filter, phases []Phase, firstDir bool, body []byte, md *corev3.Metadata) {
		for i, ph := range phases {
			b := body
			if ph == RequestHeaders || ph == ResponseHeaders {
				b = d.Profile.RequestBody
			}
			m := d.message(f, ph, firstDir && i == 0, i == 0, id, b, md)
			out = append(out, MessageSize{Filter: level, Phase: ph, Bytes: proto.Size(m)})
		}
	}
	add("router", &d.Shape.Router, d.Shape.Router.RequestPhases, true, d.Profile.RequestBody, nil)
	add("upstream", &d.Shape.Upstream, d.Shape.Upstream.RequestPhases, true, d.Profile.RequestBody, d.forward(nil, id))
	add("upstream", &d.Shape.Upstream, d.Shape.Upstream.ResponsePhases, len(d.Shape.Upstream.RequestPhases) == 0, d.Profile.ResponseBody, d.forward(nil, id))
	add("router", &d.Shape.Router, d.Shape.Router.ResponsePhases, false, d.Profile.ResponseBody, nil)
	return out
}

// MessageSize is one message's protobuf size.
type MessageSize struct {
	Filter string `json:"filter"`
	Phase  Phase  `json:"phase"`
	Bytes  int    `json:"bytes"`
}

// RequestID is the x-request-id of the n-th request; fixed width so every
// request has the same message sizes.
func RequestID(n uint64) string { return fmt.Sprintf("bench-%012d", n) }

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

// Do sends one request's messages on a router-level and an upstream-level
// stream and checks the replies.
func (d *Driver) Do(ctx context.Context, c extprocv3.ExternalProcessorClient, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := d.Profile
	rs, err := c.Process(metadata.NewOutgoingContext(ctx, d.routerMD))
	if err != nil {
		return fail("router: open stream", "%v", err)
	}
	body := p.RequestBody
	var dyn *structpb.Struct
	for i, ph := range d.Shape.Router.RequestPhases {
		resp, err := roundTrip(rs, d.message(&d.Shape.Router, ph, i == 0, i == 0, id, body, nil), "router", ph)
		if err != nil {
			return err
		}
		if err := d.checkRouterRequest(ph, resp, id); err != nil {
			return err
		}
		if bm := replyCommon(resp).GetBodyMutation().GetBody(); bm != nil {
			body = bm
		}
		if resp.GetDynamicMetadata() != nil {
			dyn = resp.GetDynamicMetadata()
		}
	}
	if !d.Strict {
		dyn = nil // the null server writes no metadata; forward Weir's
	}

	us, err := c.Process(metadata.NewOutgoingContext(ctx, d.upstreamMD))
	if err != nil {
		return fail("upstream: open stream", "%v", err)
	}
	mdctx := d.forward(dyn, id)
	up := d.Shape.Upstream
	for i, ph := range up.RequestPhases {
		resp, err := roundTrip(us, d.message(&up, ph, i == 0, i == 0, id, body, mdctx), "upstream", ph)
		if err != nil {
			return err
		}
		if err := d.checkUpstreamRequest(ph, resp, body); err != nil {
			return err
		}
	}
	for i, ph := range up.ResponsePhases {
		first := len(up.RequestPhases) == 0 && i == 0
		resp, err := roundTrip(us, d.message(&up, ph, first, i == 0, id, p.ResponseBody, mdctx), "upstream", ph)
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

	for i, ph := range d.Shape.Router.ResponsePhases {
		resp, err := roundTrip(rs, d.message(&d.Shape.Router, ph, false, i == 0, id, p.ResponseBody, nil), "router", ph)
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

func (d *Driver) checkRouterRequest(ph Phase, r *extprocv3.ProcessingResponse, id string) error {
	if err := checkType(ph, r, "router"); err != nil || !d.Strict || ph != RequestBody {
		return err
	}
	c := replyCommon(r)
	if got := setHeaders(c)[config.HeaderBackend]; got != d.Profile.Backend {
		return fail("router request_body: wrong "+config.HeaderBackend, "got %q, want %q", got, d.Profile.Backend)
	}
	md := r.GetDynamicMetadata().GetFields()[config.MetadataNamespace].GetStructValue()
	want := d.expectedMetadata(id)
	for k, v := range want.GetFields() {
		if got := md.GetFields()[k].GetStringValue(); got != v.GetStringValue() {
			return fail("router request_body: wrong metadata "+k, "got %q, want %q", got, v.GetStringValue())
		}
	}
	return nil
}

func (d *Driver) checkUpstreamRequest(ph Phase, r *extprocv3.ProcessingResponse, sent []byte) error {
	if err := checkType(ph, r, "upstream"); err != nil || !d.Strict || ph != RequestBody {
		return err
	}
	p := d.Profile
	c := replyCommon(r)
	h := setHeaders(c)
	if h[":path"] != p.UpstreamPath {
		return fail("upstream request_body: wrong :path", "got %q, want %q", h[":path"], p.UpstreamPath)
	}
	if h[":authority"] != p.Authority {
		return fail("upstream request_body: wrong :authority", "got %q, want %q", h[":authority"], p.Authority)
	}
	if p.SigV4 {
		// SigV4: "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/bedrock/aws4_request, SignedHeaders=..., Signature=<64 hex>".
		a := h["authorization"]
		if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential="+p.AccessKeyID+"/") ||
			!strings.Contains(a, "/"+p.Region+"/bedrock/aws4_request, SignedHeaders=") ||
			len(a) < 64 || !isHex(a[len(a)-64:]) || h["x-amz-date"] == "" {
			return fail("upstream request_body: not SigV4-signed", "authorization %q, x-amz-date %q", a, h["x-amz-date"])
		}
	}
	if p.Credential != "" {
		found := false
		for _, v := range h {
			found = found || v == p.Credential || v == "Bearer "+p.Credential
		}
		if !found {
			return fail("upstream request_body: backend credential not set", "set headers %v", keys(h))
		}
	}
	if h["authorization"] == "Bearer "+p.ClientKey {
		return fail("upstream request_body: client credential forwarded", "")
	}
	out := sent
	bm := c.GetBodyMutation().GetBody()
	switch {
	case p.RewriteRequest && bm == nil:
		return fail("upstream request_body: body not translated", "no body mutation")
	case !p.RewriteRequest && bm != nil:
		return fail("upstream request_body: passthrough body was rewritten", "%d bytes", len(bm))
	case bm != nil:
		out = bm
		if !gjson.ValidBytes(bm) {
			return fail("upstream request_body: translated body is not JSON", "%.200s", bm)
		}
		switch p.Provider {
		case "bedrock", "gemini":
			// The model is in the path, checked above.
		default:
			if m := gjson.GetBytes(bm, "model").Str; m != p.UpstreamModel {
				return fail("upstream request_body: wrong upstream model", "got %q, want %q", m, p.UpstreamModel)
			}
		}
		switch p.Provider {
		case "anthropic":
			if gjson.GetBytes(bm, "system").Raw == "" || gjson.GetBytes(bm, "messages.#").Int() != 3 || gjson.GetBytes(bm, "max_tokens").Int() != 512 {
				return fail("upstream request_body: not an Anthropic Messages request", "%.300s", bm)
			}
		case "bedrock":
			if gjson.GetBytes(bm, "system.0.text").Str == "" || gjson.GetBytes(bm, "messages.#").Int() != 3 ||
				gjson.GetBytes(bm, "messages.0.content.0.text").Str == "" || gjson.GetBytes(bm, "inferenceConfig.maxTokens").Int() != 512 {
				return fail("upstream request_body: not a Bedrock Converse request", "%.300s", bm)
			}
		case "gemini":
			if gjson.GetBytes(bm, "systemInstruction.parts.0.text").Str == "" || gjson.GetBytes(bm, "contents.#").Int() != 3 ||
				gjson.GetBytes(bm, "contents.1.role").Str != "model" || gjson.GetBytes(bm, "generationConfig.maxOutputTokens").Int() != 512 {
				return fail("upstream request_body: not a Gemini generateContent request", "%.300s", bm)
			}
		}
	}
	if cl, ok := h["content-length"]; (ok || bm != nil) && cl != strconv.Itoa(len(out)) {
		return fail("upstream request_body: wrong content-length", "got %q, want %d", cl, len(out))
	}
	return nil
}

func (d *Driver) checkRouterResponse(ph Phase, r *extprocv3.ProcessingResponse) error {
	if err := checkType(ph, r, "router"); err != nil || !d.Strict || ph != ResponseBody {
		return err
	}
	p := d.Profile
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
	if cl := setHeaders(c)["content-length"]; cl != strconv.Itoa(len(bm)) {
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
