package extproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	openaiingress "github.com/weir-ai/weir/extproc/ingress/openai"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
)

// routerStream is the state of one request at the router-level filter. It
// lives exactly as long as the request's gRPC stream, which Envoy keeps on
// one connection, so holding state here is safe across replicas.
//
// It is the transport between Envoy's messages and the stages
// (s.pipeline, listed in stages.go): it runs their hooks, translates the
// request for the backend and the response for the client's ingress, and
// builds the replies.
type routerStream struct {
	s    *Server
	rt   *runtime.Runtime
	req  pipeline.Request
	resp pipeline.Response
	// hdrs are the request headers as Envoy holds them, from which the
	// body reply removes what the backend may not receive.
	hdrs *corev3.HeaderMap

	// stream translates the provider's stream; nil for a buffered body.
	stream provider.Stream
	// reshape re-shapes a canonical stream into the client's format; nil
	// when the stream is already in it.
	reshape    provider.Stream
	reshapeOut []byte
	// ra: a 429 came with the provider's own Retry-After.
	ra bool
	// authFailed: the provider refused Weir's credential (401/403); the
	// client gets a 502 instead of the provider's reply.
	authFailed bool
	out        []byte // reused buffer for translated stream chunks
}

func (r *routerStream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, string) {
	switch m := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return r.requestHeaders(m.RequestHeaders), "request_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		return r.requestBody(ctx, m.RequestBody), "request_body"
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return r.responseHeaders(ctx, req, m.ResponseHeaders), "response_headers"
	case *extprocv3.ProcessingRequest_ResponseBody:
		return r.responseBody(ctx, m.ResponseBody), "response_body"
	}
	return nil, "unexpected"
}

// requestHeaders reads what the router-level filter needs from the
// request headers (Envoy sends them, request_header_mode SEND), picks the
// ingress by path, and answers what needs no body: GET /v1/models,
// unknown paths and methods, and a request that arrives without a body.
// Otherwise the reply is empty and Envoy holds the headers until the body
// reply (BUFFERED body mode, processor_state.cc handleHeadersResponse),
// which then routes.
func (r *routerStream) requestHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hm := h.GetHeaders()
	r.hdrs = hm
	q := &r.req
	q.Runtime = r.rt
	q.Method = header(hm, ":method")
	q.Path, _, _ = strings.Cut(header(hm, ":path"), "?")
	// The reservation and spend id is Weir's own: Envoy keeps a client's
	// x-request-id for requests it treats as internal, and a missing one
	// would be "" for every request. x-request-id is for logs only.
	q.ReservationID = pipeline.NewID()
	q.ID = header(hm, config.HeaderRequestID)
	q.Authorization = header(hm, "authorization")
	q.APIKey = header(hm, "x-api-key")
	q.ContentType = header(hm, "content-type")
	if p := r.rt.Policy; p != nil && p.Session != nil {
		q.Session = header(hm, p.Session.Header)
	}
	op, known := r.s.ingresses.ForPath(q.Path)
	q.Ingress, q.Endpoint, q.Count = op.Adapter, op.Endpoint, op.Count
	if q.Endpoint == provider.EndpointMessages {
		q.AnthropicBeta = header(hm, "anthropic-beta")
	}
	models := q.Path == "/v1/models" || strings.HasPrefix(q.Path, "/v1/models/")
	if models && (q.Method == "GET" || q.Method == "HEAD") {
		return r.models()
	}
	if !known && !models {
		return r.fail(fmt.Errorf("%w: %s %s", errs.ErrNotFound, q.Method, q.Path))
	}
	if q.Method != "POST" || models {
		return r.fail(fmt.Errorf("%w: %s %s", errs.ErrMethodNotAllowed, q.Method, q.Path))
	}
	if h.GetEndOfStream() {
		// No body will follow: without this the request would reach the
		// route table's catch-all.
		return r.fail(fmt.Errorf("%w: empty body", errs.ErrInvalidJSON))
	}
	return headersResponse()
}

func (r *routerStream) requestBody(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	q := &r.req
	if q.Runtime == nil {
		// Envoy sends request headers first (request_header_mode SEND); a
		// body without them is a config Weir does not generate.
		return r.fail(errors.New("router filter: request body without request headers; request_header_mode must be SEND"))
	}
	q.Body = b.GetBody()
	if err := r.s.pipeline.Run(ctx, q); err != nil {
		// A stage after Admit (the context window) may refuse an admitted
		// request: its slot frees now, not when the reservation expires.
		r.s.gate.Release(ctx, &q.Ticket, q.ReservationID)
		return r.fail(err)
	}
	if a := q.Answer; a != nil {
		r.resp.Status, r.resp.Done = a.Status, true
		return immediateBody(a.Status, &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{contentTypeJSON}}, a.Body, a.Details)
	}
	if q.Ticket.SoftAlert {
		r.s.metrics.SoftBudget()
		key := ""
		if k := q.Ticket.Key; k != nil {
			key = k.Hash.Short()
		}
		r.s.log.Warn("soft budget crossed", "request_id", q.ID, "key", key, "model", q.Model)
	}
	// Admitted: from here the stream's end settles the reservation, which a
	// failure below releases.
	q.Routed = true
	// The reply carries the request as the backend wants it, so the
	// common attempt needs no upstream-level message: the upstream filter
	// is skipped while x-weir-backend names the attempt's backend.
	p, err := prepare(q.Backend, &provider.Request{
		Endpoint:      q.Endpoint,
		Body:          q.Body,
		Model:         q.Target.UpstreamModel,
		ClientModel:   q.BodyModel,
		Stream:        q.Stream,
		AnthropicBeta: q.AnthropicBeta,
		Ctx:           ctx,
	}, r.hdrs, q.Backend.BackendHeader)
	if err != nil {
		return r.fail(err)
	}
	if q.Rewritten && p.body == nil {
		// A body a stage rewrote (the ingress's canonical translation, an
		// unsealed stored id) replaces the client's; its length is what
		// Envoy checks.
		p.body = q.Body
		p.mut.SetHeaders = append(p.mut.SetHeaders, setHeader("content-length", strconv.Itoa(len(q.Body))))
	}
	cr := p.common()
	// Envoy re-picks the route from the mutated headers before the router
	// runs; honoured only alongside a header mutation, which is there.
	cr.ClearRouteCache = true
	resp := bodyResponse(cr, true)
	// An upstream attempt re-translated for another backend reads these;
	// it may run on another replica.
	resp.DynamicMetadata = namespaced(&structpb.Struct{Fields: map[string]*structpb.Value{
		config.MetaBackend:     q.Backend.MetaName,
		config.MetaModel:       stringValue(q.Target.UpstreamModel),
		config.MetaEndpoint:    endpointValue(q.Endpoint),
		config.MetaRequestID:   stringValue(q.ID),
		config.MetaClientModel: stringValue(q.BodyModel),
		config.MetaStream:      boolValue(q.Stream),
		config.MetaHeaders:     stringValue(p.names),
	}})
	return resp
}

func (r *routerStream) responseHeaders(ctx context.Context, req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hm := h.GetHeaders()
	q, rs := &r.req, &r.resp
	rs.Status, _ = strconv.Atoi(header(hm, ":status"))
	if rs.Status == 429 {
		r.ra = header(hm, "retry-after") != ""
	}
	rs.Served = q.Backend
	if name := hostBackend(req); name != "" {
		if b := r.rt.Backends[name]; b != nil {
			rs.Served = b
		}
	}
	ct := header(hm, "content-type")
	rs.Stream = !h.GetEndOfStream() && rs.Served != nil && rs.Status >= 200 && rs.Status < 300 && isStream(rs.Served.Translator, ct)
	mut := &extprocv3.HeaderMutation{}
	if id := r.responseID(); id != "" {
		mut.SetHeaders = append(mut.SetHeaders, setHeader(config.HeaderRequestID, id))
	}
	r.s.pipeline.ResponseHeaders(ctx, q, rs)
	for _, x := range rs.TakeHeaders() {
		mut.SetHeaders = append(mut.SetHeaders, setHeader(x.Key, x.Value))
	}
	if rs.Served != nil {
		if ht, ok := rs.Served.Translator.(provider.HeaderTranslator); ok {
			for _, x := range ht.TranslateResponseHeaders(func(n string) string { return header(hm, n) }) {
				// A provider header under an OpenAI name is still the
				// provider's: it crosses only when exposed, and never
				// over a value Weir set.
				if (exposedByDefault(x.Key) || rs.Served.Expose.Has(x.Key)) && !setsName(mut.SetHeaders, x.Key) {
					mut.SetHeaders = append(mut.SetHeaders, setHeader(x.Key, x.Value))
				}
			}
		}
	}
	if q.Routed && (rs.Status == 401 || rs.Status == 403) {
		r.providerAuthFailed()
		mut.SetHeaders = append(mut.SetHeaders, setHeader(":status", strconv.Itoa(rs.Status)))
	}
	// Everything else the provider sent stays on its side.
	mut.RemoveHeaders = responseRemovals(hm, rs.Served, mut.SetHeaders)
	resp := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: mut}}
	out := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: resp}}
	if h.GetEndOfStream() {
		rs.Done = true
		if q.Routed && rs.Status >= 400 {
			return r.bodilessError(hm)
		}
		return out
	}
	if rs.Stream {
		r.stream = rs.Served.Translator.NewStream(&provider.StreamInfo{
			Endpoint:     q.Endpoint,
			Model:        q.Model,
			IncludeUsage: q.IncludeUsage,
			RequestID:    q.ID,
		})
		if q.SealIDs {
			// Every lifecycle event carries the response's id.
			r.stream = r.rt.StoredIDs.NewStream(r.stream, q.StoredIDOwner())
		}
		if q.Canonical {
			r.reshape = q.Ingress.NewStream(q.BodyModel, q.ID)
		}
		// Envoy keeps the upstream content-length when a response switches
		// to STREAMED, which would cut the translated stream short.
		mut.RemoveHeaders = append(mut.RemoveHeaders, "content-length")
		if !strings.HasPrefix(ct, "text/event-stream") {
			// A provider framing (Bedrock's eventstream) translated to SSE.
			mut.SetHeaders = append(mut.SetHeaders, setHeader("content-type", "text/event-stream"))
		}
		out.ModeOverride = &extprocfilterv3.ProcessingMode{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED,
		}
	}
	return out
}

func (r *routerStream) responseBody(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if r.stream != nil {
		return r.streamChunk(ctx, b)
	}
	rs := &r.resp
	rs.Done = true
	body := b.GetBody()
	out, status := r.bufferedBody(body)
	final := out
	if final == nil {
		final = body
	}
	got, err := r.s.pipeline.ResponseBody(ctx, &r.req, rs, final)
	switch {
	case err != nil:
		// A stage refused the response: the client gets the error
		// instead, in its format.
		rs.Err, status = err, errs.Status(err)
		out = r.req.Ingress.ErrorBody(status, errs.Body(err))
	case !pipeline.Same(got, final):
		out = got
	}
	var hm *extprocv3.HeaderMutation
	if out != nil {
		// Envoy checks content-length against the mutated body while it
		// still holds the headers.
		hm = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			setHeader("content-type", "application/json"),
			setHeader("content-length", strconv.Itoa(len(out))),
		}}
	}
	set := func(k, v string) {
		if hm == nil {
			hm = &extprocv3.HeaderMutation{}
		}
		hm.SetHeaders = append(hm.SetHeaders, setHeader(k, v))
	}
	if status != 0 {
		rs.Status = status
		set(":status", strconv.Itoa(status))
	}
	for _, x := range rs.TakeHeaders() {
		set(x.Key, x.Value)
	}
	if rs.Status == 429 && !r.ra && rs.Served != nil {
		// Google's APIs (Gemini, Vertex) put the delay in the error body
		// (RetryInfo) and send no header; SDKs back off by the header.
		// Envoy still holds a buffered response's headers, so a header
		// set with its body is honoured.
		if ra := errs.RetryDelay(body); ra != "" {
			set("retry-after", ra)
		}
	}
	cr := &extprocv3.CommonResponse{HeaderMutation: hm}
	if out != nil {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	}
	return bodyResponse(cr, false)
}

// providerAuthFailed turns the provider's 401 or 403, which says Weir's
// own provider credential failed, into a 502 that says so: passed on, a
// client would take it for a bad virtual key. The operator must act, so
// it is logged at warn, with no credential.
func (r *routerStream) providerAuthFailed() {
	backend := ""
	if r.resp.Served != nil {
		backend = r.resp.Served.Config.Name
	}
	r.s.log.Warn("the provider rejected the gateway's credential", "request_id", r.responseID(),
		"backend", backend, "upstream_status", r.resp.Status)
	r.resp.Err = fmt.Errorf("%w (upstream status %d); your API key is not at fault: tell the gateway's operator", errs.ErrProviderAuth, r.resp.Status)
	r.resp.Status = errs.Status(r.resp.Err)
	r.authFailed = true
}

// bodilessError answers a provider error that came without a body: the
// client still gets a JSON error in its ingress's shape. Envoy holds the
// response headers until this reply, so an immediate response replaces
// the response: ext_proc.cc sendImmediateResponse calls sendLocalReply,
// and filter_manager.cc DownstreamFilterManager::sendLocalReply, finding
// response headers that no codec has encoded yet, sends the reply with
// sendDirectLocalReply, bypassing the other encoder filters.
// The provider's Retry-After is the one header kept.
func (r *routerStream) bodilessError(hm *corev3.HeaderMap) *extprocv3.ProcessingResponse {
	if !r.authFailed {
		typ := "upstream_error"
		if r.resp.Status == 429 {
			typ = "rate_limit_error"
		}
		r.resp.Err = &errs.UpstreamError{Status: r.resp.Status, Type: typ, Code: "upstream_error",
			Message: "the provider answered " + strconv.Itoa(r.resp.Status) + " with no body"}
	}
	resp := r.immediate(r.resp.Err)
	if ra := header(hm, "retry-after"); ra != "" {
		h := resp.GetImmediateResponse().GetHeaders()
		h.SetHeaders = append(h.SetHeaders, setHeader("retry-after", ra))
	}
	return resp
}

// bufferedBody translates a buffered response body for the client: the
// body to send (nil: the provider's, unchanged) and the status to set
// instead of the provider's (0: unchanged).
func (r *routerStream) bufferedBody(body []byte) ([]byte, int) {
	q, rs := &r.req, &r.resp
	if r.authFailed {
		// The provider's text describes Weir's account: none of it crosses.
		return q.Ingress.ErrorBody(rs.Status, errs.Body(rs.Err)), rs.Status
	}
	if rs.Served == nil {
		// A response to a request Weir never routed (Envoy's own reply).
		if rs.Status < 400 {
			return nil, 0
		}
		rs.Err = fmt.Errorf("%w: envoy replied %d: %s", errs.ErrUpstream, rs.Status, bytes.TrimSpace(body))
		// Envoy's local replies (503 "no healthy upstream", 504 "upstream
		// request timeout") are plain text: an error in the client's
		// format replaces them.
		out := errs.WrapBody(rs.Status, body)
		if out == nil {
			out = body
		}
		if out = q.Ingress.ErrorBody(rs.Status, out); bytes.Equal(out, body) {
			return nil, 0
		}
		return out, 0
	}
	out, usage, err := rs.Served.Translator.TranslateResponse(&provider.Response{
		Endpoint: q.Endpoint,
		Status:   rs.Status,
		Body:     body,
		Model:    q.Model,
	})
	rs.Usage = usage
	if err != nil {
		// The upstream said 2xx but sent something we cannot read. The
		// client gets a 502 rather than a body its SDK would choke on.
		rs.Err = err
		st := errs.Status(err)
		return q.Ingress.ErrorBody(st, errs.Body(err)), st
	}
	if out == nil {
		out = body
	}
	if rs.Status >= 400 {
		rs.Err = fmt.Errorf("%w: status %d", errs.ErrUpstream, rs.Status)
		// The provider's error crosses the boundary as OpenAI's fields
		// only, its message redacted of account details: one place for
		// every provider's translation. Then the ingress's shape.
		return q.Ingress.ErrorBody(rs.Status, errs.RedactUpstream(rs.Status, out)), 0
	}
	if q.SealIDs {
		// The client gets the response's id bound to its key, never the
		// provider's.
		out = r.rt.StoredIDs.SealResponse(out, q.StoredIDOwner(), "")
	}
	if q.Canonical {
		a, err := q.Ingress.Response(out, q.BodyModel)
		if err != nil {
			rs.Err = fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err)
			st := errs.Status(rs.Err)
			return q.Ingress.ErrorBody(st, errs.Body(rs.Err)), st
		}
		if a != nil {
			out = a
		}
	}
	if pipeline.Same(out, body) {
		return nil, 0
	}
	return out, 0
}

func (r *routerStream) streamChunk(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	chunk, eos := b.GetBody(), b.GetEndOfStream()
	q, rs := &r.req, &r.resp
	_, failed := r.stream.(errStream)
	out, err := r.stream.Translate(r.out[:0], chunk, eos)
	if !failed {
		// After a stream error the rest is swallowed; the usage observed
		// before it stays.
		rs.Usage = r.stream.Usage()
	}
	if eos {
		rs.Done = true
	}
	if err != nil {
		// Headers are already on their way, so the status cannot change:
		// tell the client in-band and stop. A canonical stream's error is
		// OpenAI's, which the ingress's stream re-shapes with the rest.
		rs.Err = err
		bad := fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err)
		if r.reshape != nil {
			out = canonical.AppendStreamError(out, bad)
		} else {
			out = q.Ingress.AppendStreamError(out, bad)
		}
		r.stream = errStream{}
	}
	r.out = out
	if r.reshape != nil {
		// The ingress stream re-shapes the OpenAI events, errors included.
		var ierr error
		r.reshapeOut, ierr = r.reshape.Translate(r.reshapeOut[:0], out, eos)
		if ierr != nil && rs.Err == nil {
			rs.Err = ierr
		}
		out = r.reshapeOut
	}
	got, err := r.s.pipeline.ResponseBody(ctx, q, rs, out)
	if err != nil {
		// A stage ended the stream (a guardrail, say): what it let through,
		// then the error, and nothing after.
		rs.Err = err
		got = q.Ingress.AppendStreamError(got, err)
		r.stream, r.reshape = errStream{}, nil
	}
	return r.chunkReply(chunk, got)
}

// chunkReply answers one streamed chunk with its translation.
func (r *routerStream) chunkReply(chunk, out []byte) *extprocv3.ProcessingResponse {
	if bytes.Equal(out, chunk) {
		// Pass-through: no mutation keeps the message small.
		return bodyResponse(&extprocv3.CommonResponse{}, false)
	}
	bm := &extprocv3.BodyMutation{}
	if len(out) == 0 {
		bm.Mutation = &extprocv3.BodyMutation_ClearBody{ClearBody: true}
	} else {
		// Copy: the buffers are reused for the next chunk while gRPC may
		// still be marshalling this one.
		bm.Mutation = &extprocv3.BodyMutation_Body{Body: bytes.Clone(out)}
	}
	return bodyResponse(&extprocv3.CommonResponse{BodyMutation: bm}, false)
}

// isStream reports whether a 2xx response with content type ct is streamed
// and translated chunk by chunk: text/event-stream, or a type the
// translator declares (provider.StreamContentTyper).
func isStream(t provider.Translator, ct string) bool {
	if strings.HasPrefix(ct, "text/event-stream") {
		return true
	}
	st, ok := t.(provider.StreamContentTyper)
	return ok && ct != "" && st.IsStreamContentType(ct)
}

// errStream swallows whatever follows a stream error.
type errStream struct{}

func (errStream) Translate(dst, _ []byte, _ bool) ([]byte, error) { return dst, nil }
func (errStream) Usage() provider.Usage                           { return provider.Usage{} }

func (r *routerStream) requestID() string { return r.req.ID }

// responseID is the client's x-request-id: the one Envoy passed, or Weir's
// own id (the spend record's) when there was none, so that the provider's
// own request id never reaches the client in its place.
func (r *routerStream) responseID() string {
	if r.req.ID != "" {
		return r.req.ID
	}
	return r.req.ReservationID
}

func (r *routerStream) internalError(err error) *extprocv3.ProcessingResponse { return r.fail(err) }

// immediate is the reply that ends the request with err, in the
// ingress's error shape: the Anthropic SDK parses Anthropic's.
func (r *routerStream) immediate(err error) *extprocv3.ProcessingResponse {
	resp := immediate(err, r.responseID())
	if ing := r.req.Ingress; ing != nil {
		ir := resp.GetImmediateResponse()
		ir.Body = ing.ErrorBody(int(ir.Status.Code), ir.Body)
	}
	return resp
}

// fail ends the request with an immediate response.
func (r *routerStream) fail(err error) *extprocv3.ProcessingResponse {
	r.resp.Err = err
	r.resp.Status = errs.Status(err)
	r.resp.Done = true
	if _, ok := errs.KindOf(err); !ok {
		r.s.log.Error("internal error", "request_id", r.req.ID, "error", err)
	}
	r.s.logCredential(r.req.ID, err)
	resp := r.immediate(err)
	if rule, ok := refusal(err, r.resp.Status); ok {
		r.refused(rule)
		hm := resp.GetImmediateResponse().GetHeaders()
		hm.SetHeaders = append(hm.SetHeaders, setHeader(errs.HeaderRefusalRule, rule.Label()))
	}
	if hs := r.req.Ticket.RateHeaders(); len(hs) > 0 {
		hm := resp.GetImmediateResponse().GetHeaders()
		for _, x := range hs {
			hm.SetHeaders = append(hm.SetHeaders, setHeader(x.Key, x.Value))
		}
	}
	return resp
}

// refusal reports whether err, answered with status, refuses the request
// by a rule, and which: the rule it names, or [errs.RuleOther] for an auth,
// limits or store status that names none (a gap to close, counted so it
// shows). Malformed requests, unknown paths and internal errors are not
// refusals.
func refusal(err error, status int) (errs.Rule, bool) {
	if rule := errs.RuleOf(err); rule != "" {
		return rule, true
	}
	switch status {
	case 401, 402, 403, 429, 503:
		return errs.RuleOther, true
	}
	return "", false
}

// refused counts and logs one refusal. The log line is at info, not debug:
// a refusal is the gateway enforcing policy on someone's traffic, and the
// first question an operator is asked about it ("why was I refused?") must
// be answerable from a default-level log. Its volume is bounded by
// request volume, like the access log's, and a refused request costs no
// upstream call, so no separate rate limit on the line; an operator who
// wants less sets the level to warn. It carries the key's display prefix,
// never the key.
func (r *routerStream) refused(rule errs.Rule) {
	r.s.metrics.Refused(r.resp.Status, rule)
	key := ""
	if k := r.req.Ticket.Key; k != nil {
		key = k.Hash.Short()
	}
	r.s.log.Info("refused", "rule", rule.Label(), "status", r.resp.Status, "request_id", r.responseID(),
		"key", key, "model", r.req.Model, "path", r.req.Path)
}

// finish runs the stages' end hooks (accounting: settle, spend record,
// metrics, access log) once per request. It runs when the stream ends,
// also when the client went away mid-stream.
func (r *routerStream) finish(ctx context.Context) {
	if r.req.Path == "" && r.resp.Status == 0 {
		return // the stream carried nothing
	}
	if !r.resp.Done && r.resp.Err == nil {
		r.resp.Err = errors.New("stream ended before the response completed")
	}
	r.s.pipeline.End(ctx, &r.req, &r.resp)
	if r.s.onFinish != nil {
		r.s.onFinish()
	}
}

// canonical is the format of Weir's canonical shape, OpenAI's: a
// canonical stream's in-band error is written in it, and the ingress's
// stream re-shapes it with the rest.
var canonical = openaiingress.Adapter{}
