package extproc

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/accesslog"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	anthropicingress "github.com/weir-ai/weir/extproc/ingress/anthropic"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
	"github.com/weir-ai/weir/extproc/tokens"
)

// routerStream is the state of one request at the router-level filter. It
// lives exactly as long as the request's gRPC stream, which Envoy keeps on
// one connection, so holding state here is safe across replicas.
type routerStream struct {
	s     *Server
	rt    *runtime.Runtime
	req   pipeline.Request
	start time.Time
	// hdrs are the request headers as Envoy holds them, from which the
	// body reply removes what the backend may not receive.
	hdrs *corev3.HeaderMap

	routed bool // the request passed the pipeline and went upstream
	served *runtime.Backend
	status int
	stream provider.Stream
	// anth marks Anthropic Messages ingress; ing re-shapes the OpenAI
	// stream into Anthropic events.
	anth   bool
	ing    provider.Stream
	ingOut []byte
	usage  provider.Usage
	// dv follows the text a stream delivered, to bill a stream that ends
	// before the provider's final usage.
	dv   *delivered
	err  error
	done bool
	// ra: a 429 came with the provider's own Retry-After. (A bool here
	// fits in padding: the struct, allocated per request, keeps its size.)
	ra bool
	// authFailed: the provider refused Weir's credential (401/403); the
	// client gets a 502 instead of the provider's reply.
	authFailed bool
	out        []byte // reused buffer for translated stream chunks
	resp       []byte // response body kept for the access log, when enabled
}

func (r *routerStream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, string) {
	switch m := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return r.requestHeaders(m.RequestHeaders), "request_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		return r.requestBody(ctx, m.RequestBody), "request_body"
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return r.responseHeaders(req, m.ResponseHeaders), "response_headers"
	case *extprocv3.ProcessingRequest_ResponseBody:
		return r.responseBody(m.ResponseBody), "response_body"
	}
	return nil, "unexpected"
}

// requestHeaders reads what the router-level filter needs from the
// request headers (Envoy sends them, request_header_mode SEND) and answers
// what needs no body: GET /v1/models, unknown paths and methods, and a
// request that arrives without a body. Otherwise the reply is empty and
// Envoy holds the headers until the body reply (BUFFERED body mode,
// processor_state.cc handleHeadersResponse), which then routes.
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
	q.Endpoint = pipeline.EndpointForPath(q.Path)
	switch q.Path {
	case anthropicMessages, anthropicCountTokens:
		// Anthropic Messages ingress: translated to the OpenAI shape at the
		// body, so every backend serves it, and back on the response.
		r.anth = true
	}
	models := q.Path == "/v1/models" || strings.HasPrefix(q.Path, "/v1/models/")
	if models && (q.Method == "GET" || q.Method == "HEAD") {
		return r.models()
	}
	if q.Endpoint == provider.EndpointUnknown && !r.anth && !models {
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
	if r.anth {
		if int64(len(q.Body)) > r.rt.MaxBody {
			return r.fail(fmt.Errorf("%w: %d bytes exceeds the limit of %d", errs.ErrBodyTooLarge, len(q.Body), r.rt.MaxBody))
		}
		if q.Path == anthropicCountTokens {
			return r.countTokens(ctx)
		}
		ob, _, _, err := anthIngress.Request(q.Body)
		if err != nil {
			return r.fail(err)
		}
		q.Body, q.Endpoint = ob, provider.EndpointChat
	}
	if err := r.s.pipeline.Run(ctx, q); err != nil {
		// A stage after Admit (the context window) may refuse an admitted
		// request: its slot frees now, not when the reservation expires.
		r.s.gate.Release(ctx, &q.Ticket, q.ReservationID)
		return r.fail(err)
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
	r.routed = true
	// The reply carries the request as the backend wants it, so the
	// common attempt needs no upstream-level message: the upstream filter
	// is skipped while x-weir-backend names the attempt's backend.
	p, err := prepare(q.Backend, &provider.Request{
		Endpoint:    q.Endpoint,
		Body:        q.Body,
		Model:       q.Target.UpstreamModel,
		ClientModel: q.BodyModel,
		Stream:      q.Stream,
		Ctx:         ctx,
	}, r.hdrs, q.Backend.BackendHeader)
	if err != nil {
		return r.fail(err)
	}
	if (r.anth || q.Rewritten) && p.body == nil {
		// The OpenAI-shaped translation of the Messages body, or a body
		// whose stored id was unsealed, replaces the client's; its length
		// is what Envoy checks.
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

func (r *routerStream) responseHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hm := h.GetHeaders()
	r.status, _ = strconv.Atoi(header(hm, ":status"))
	if r.status == 429 {
		r.ra = header(hm, "retry-after") != ""
	}
	r.served = r.req.Backend
	if name := hostBackend(req); name != "" {
		if b := r.rt.Backends[name]; b != nil {
			r.served = b
		}
	}
	mut := &extprocv3.HeaderMutation{}
	if id := r.responseID(); id != "" {
		mut.SetHeaders = append(mut.SetHeaders, setHeader(config.HeaderRequestID, id))
	}
	// Weir's own limits replace the provider's x-ratelimit-* headers,
	// which describe Weir's upstream account, not the client's key.
	for _, x := range r.req.Ticket.RateHeaders() {
		mut.SetHeaders = append(mut.SetHeaders, setHeader(x.Key, x.Value))
	}
	if r.served != nil {
		if ht, ok := r.served.Translator.(provider.HeaderTranslator); ok {
			for _, x := range ht.TranslateResponseHeaders(func(n string) string { return header(hm, n) }) {
				// A provider header under an OpenAI name is still the
				// provider's: it crosses only when exposed, and never
				// over a value Weir set.
				if (exposedByDefault(x.Key) || r.served.Expose.Has(x.Key)) && !setsName(mut.SetHeaders, x.Key) {
					mut.SetHeaders = append(mut.SetHeaders, setHeader(x.Key, x.Value))
				}
			}
		}
	}
	if r.routed && (r.status == 401 || r.status == 403) {
		r.providerAuthFailed()
		mut.SetHeaders = append(mut.SetHeaders, setHeader(":status", strconv.Itoa(r.status)))
	}
	// Everything else the provider sent stays on its side.
	mut.RemoveHeaders = responseRemovals(hm, r.served, mut.SetHeaders)
	resp := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: mut}}
	out := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: resp}}
	if h.GetEndOfStream() {
		r.done = true
		if r.routed && r.status >= 400 {
			return r.bodilessError(hm)
		}
		return out
	}
	ct := header(hm, "content-type")
	if r.served != nil && r.status >= 200 && r.status < 300 && isStream(r.served.Translator, ct) {
		r.stream = r.served.Translator.NewStream(&provider.StreamInfo{
			Endpoint:     r.req.Endpoint,
			Model:        r.req.Model,
			IncludeUsage: r.req.IncludeUsage,
			RequestID:    r.req.ID,
		})
		if r.req.SealIDs {
			// Every lifecycle event carries the response's id.
			r.stream = r.rt.StoredIDs.NewStream(r.stream, r.req.StoredIDOwner())
		}
		r.dv = newDelivered(cmp.Or(r.req.Target.UpstreamModel, r.req.Model))
		if r.anth {
			r.ing = anthIngress.NewStream(r.req.BodyModel, r.req.ID)
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

func (r *routerStream) responseBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	resp := r.responseBodyReply(b)
	if r.stream == nil && r.served != nil && r.rt.Policy != nil && r.rt.Policy.CostHeader && r.req.Ticket.Priced {
		// Buffered bodies only: a stream's headers left before its usage
		// was known.
		cr := resp.GetResponseBody().GetResponse()
		if cr.HeaderMutation == nil {
			cr.HeaderMutation = &extprocv3.HeaderMutation{}
		}
		usd := float64(r.req.Ticket.Cost(r.usage)) / 1e6
		cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, setHeader(headerCost, strconv.FormatFloat(usd, 'f', 6, 64)))
	}
	if r.status == 429 && !r.ra && r.stream == nil && r.served != nil {
		// Google's APIs (Gemini, Vertex) put the delay in the error body
		// (RetryInfo) and send no header; SDKs back off by the header.
		// Envoy still holds a buffered response's headers, so a header
		// set with its body is honoured.
		if ra := errs.RetryDelay(b.GetBody()); ra != "" {
			cr := resp.GetResponseBody().GetResponse()
			if cr.HeaderMutation == nil {
				cr.HeaderMutation = &extprocv3.HeaderMutation{}
			}
			cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, setHeader("retry-after", ra))
		}
	}
	return resp
}

// headerCost carries a buffered response's cost in USD, when enabled.
const headerCost = "x-weir-cost"

// providerAuthFailed turns the provider's 401 or 403, which says Weir's
// own provider credential failed, into a 502 that says so: passed on, a
// client would take it for a bad virtual key. The operator must act, so
// it is logged at warn, with no credential.
func (r *routerStream) providerAuthFailed() {
	backend := ""
	if r.served != nil {
		backend = r.served.Config.Name
	}
	r.s.log.Warn("the provider rejected the gateway's credential", "request_id", r.responseID(),
		"backend", backend, "upstream_status", r.status)
	r.err = fmt.Errorf("%w (upstream status %d); your API key is not at fault: tell the gateway's operator", errs.ErrProviderAuth, r.status)
	r.status = errs.Status(r.err)
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
		if r.status == 429 {
			typ = "rate_limit_error"
		}
		r.err = &errs.UpstreamError{Status: r.status, Type: typ, Code: "upstream_error",
			Message: "the provider answered " + strconv.Itoa(r.status) + " with no body"}
	}
	resp := r.immediate(r.err)
	if ra := header(hm, "retry-after"); ra != "" {
		h := resp.GetImmediateResponse().GetHeaders()
		h.SetHeaders = append(h.SetHeaders, setHeader("retry-after", ra))
	}
	return resp
}

func (r *routerStream) responseBodyReply(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if r.stream != nil {
		return r.streamChunk(b)
	}
	r.done = true
	body := b.GetBody()
	if r.authFailed {
		// The provider's text describes Weir's account: none of it crosses.
		st, out := r.status, errs.Body(r.err)
		if r.anth {
			st, out = anthropicingress.Error(r.err)
		}
		return r.replaceBody(out, st)
	}
	if r.served == nil {
		// A response to a request Weir never routed (Envoy's own reply).
		out := r.wrapNonJSONError(body)
		if r.anth && r.status >= 400 {
			if out == nil {
				out = body
			}
			out = anthropicingress.ErrorBody(r.status, out)
		}
		return r.bodyReply(out)
	}
	out, usage, err := r.served.Translator.TranslateResponse(&provider.Response{
		Endpoint: r.req.Endpoint,
		Status:   r.status,
		Body:     body,
		Model:    r.req.Model,
	})
	r.usage = usage
	if err != nil {
		// The upstream said 2xx but sent something we cannot read. The
		// client gets a 502 rather than a body its SDK would choke on.
		r.err = err
		r.status = errs.Status(err)
		return r.replaceBody(errs.Body(err), r.status)
	}
	if r.status >= 400 {
		r.err = fmt.Errorf("%w: status %d", errs.ErrUpstream, r.status)
		// The provider's error crosses the boundary as OpenAI's fields
		// only, its message redacted of account details: one place for
		// every provider's translation.
		if out == nil {
			out = body
		}
		out = errs.RedactUpstream(r.status, out)
	} else if r.req.SealIDs {
		// The client gets the response's id bound to its key, never the
		// provider's.
		if out == nil {
			out = body
		}
		out = r.rt.StoredIDs.SealResponse(out, r.req.StoredIDOwner(), "")
	}
	if r.anth {
		if out == nil {
			out = body
		}
		a, err := anthIngress.Response(r.status, out, r.req.BodyModel)
		if err != nil {
			r.err = err
			st, eb := anthropicingress.Error(fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err))
			r.status = st
			return r.replaceBody(eb, st)
		}
		return r.bodyReply(a)
	}
	if out == nil {
		r.keepForLog(body)
		return bodyResponse(&extprocv3.CommonResponse{}, false)
	}
	return r.bodyReply(out)
}

func (r *routerStream) streamChunk(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	chunk, eos := b.GetBody(), b.GetEndOfStream()
	_, failed := r.stream.(errStream)
	out, err := r.stream.Translate(r.out[:0], chunk, eos)
	if !failed {
		// After a stream error the rest is swallowed; the usage observed
		// before it stays.
		r.usage = r.stream.Usage()
		r.dv.feed(out)
	}
	if eos {
		r.done = true
	}
	if err != nil {
		// Headers are already on their way, so the status cannot change;
		// tell the client in-band the way OpenAI does, and stop.
		r.err = err
		out = append(out, "data: "...)
		out = append(out, errs.Body(fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err))...)
		out = append(out, "\n\ndata: [DONE]\n\n"...)
		r.stream = errStream{}
	}
	r.out = out
	if r.ing != nil {
		// The ingress stream re-shapes the OpenAI events, errors included.
		var ierr error
		r.ingOut, ierr = r.ing.Translate(r.ingOut[:0], out, eos)
		if ierr != nil && r.err == nil {
			r.err = ierr
		}
		out = r.ingOut
	}
	return r.chunkReply(chunk, out)
}

// chunkReply answers one streamed chunk with its translation.
func (r *routerStream) chunkReply(chunk, out []byte) *extprocv3.ProcessingResponse {
	r.keepForLog(out)
	if bytes.Equal(out, chunk) {
		// Pass-through: no mutation keeps the message small.
		return bodyResponse(&extprocv3.CommonResponse{}, false)
	}
	bm := &extprocv3.BodyMutation{}
	if len(out) == 0 {
		bm.Mutation = &extprocv3.BodyMutation_ClearBody{ClearBody: true}
	} else {
		// Copy: r.out is reused for the next chunk while gRPC may still
		// be marshalling this one.
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

// bodyReply replaces a buffered body and fixes content-length, which Envoy
// checks against the mutated body while the headers are still held.
func (r *routerStream) bodyReply(out []byte) *extprocv3.ProcessingResponse {
	if out == nil {
		return bodyResponse(&extprocv3.CommonResponse{}, false)
	}
	r.keepForLog(out)
	return bodyResponse(&extprocv3.CommonResponse{
		HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			setHeader("content-type", "application/json"),
			setHeader("content-length", strconv.Itoa(len(out))),
		}},
		BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}},
	}, false)
}

// replaceBody also changes the status, for an upstream reply that has to
// become an error.
func (r *routerStream) replaceBody(out []byte, status int) *extprocv3.ProcessingResponse {
	resp := r.bodyReply(out)
	hm := resp.GetResponseBody().GetResponse().GetHeaderMutation()
	hm.SetHeaders = append(hm.SetHeaders, setHeader(":status", strconv.Itoa(status)))
	return resp
}

// wrapNonJSONError turns a local reply from Envoy itself (503 "no healthy
// upstream", 504 "upstream request timeout") into an OpenAI error.
func (r *routerStream) wrapNonJSONError(body []byte) []byte {
	if r.status < 400 {
		return nil
	}
	r.err = fmt.Errorf("%w: envoy replied %d: %s", errs.ErrUpstream, r.status, bytes.TrimSpace(body))
	return errs.WrapBody(r.status, body)
}

func (r *routerStream) keepForLog(b []byte) {
	if a := r.s.access.Load(); a.Bodies && len(r.resp) < accesslog.MaxBodyBytes {
		r.resp = append(r.resp, b...)
	}
}

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
	if r.anth {
		ir := resp.GetImmediateResponse()
		st, body := anthropicingress.Error(err)
		ir.Body, ir.Status.Code = body, typev3.StatusCode(st)
	}
	return resp
}

// fail ends the request with an immediate response.
func (r *routerStream) fail(err error) *extprocv3.ProcessingResponse {
	r.err = err
	r.status = errs.Status(err)
	r.done = true
	if _, ok := errs.KindOf(err); !ok {
		r.s.log.Error("internal error", "request_id", r.req.ID, "error", err)
	}
	r.s.logCredential(r.req.ID, err)
	resp := r.immediate(err)
	if rule, ok := refusal(err, r.status); ok {
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
	r.s.metrics.Refused(r.status, rule)
	key := ""
	if k := r.req.Ticket.Key; k != nil {
		key = k.Hash.Short()
	}
	r.s.log.Info("refused", "rule", rule.Label(), "status", r.status, "request_id", r.responseID(),
		"key", key, "model", r.req.Model, "path", r.req.Path)
}

// finish writes metrics and the access log line once per request. It runs
// when the stream ends, also when the client went away mid-stream.
func (r *routerStream) finish(ctx context.Context) {
	if r.req.Path == "" && r.status == 0 {
		return // the stream carried nothing
	}
	if !r.done && r.err == nil {
		r.err = errors.New("stream ended before the response completed")
	}
	q := &r.req
	model, backend := "", ""
	if q.Target.Model != nil {
		model = q.Target.Model.Name
	}
	if r.served != nil {
		backend = r.served.Config.Name
	} else if q.Backend != nil {
		backend = q.Backend.Config.Name
	}
	lat := r.s.now().Sub(r.start)
	r.s.metrics.Request(model, backend, q.Endpoint.String(), r.status, lat)
	u, partial := r.settledUsage()
	r.s.metrics.Tokens(model, backend, u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens)
	e := accesslog.Entry{
		RequestID:        q.ID,
		ReservationID:    q.ReservationID,
		Method:           q.Method,
		Path:             q.Path,
		Endpoint:         q.Endpoint.String(),
		Model:            q.Model,
		Backend:          backend,
		Status:           r.status,
		Stream:           q.Stream,
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		CachedTokens:     u.CachedTokens,
		Latency:          lat,
		RequestBody:      q.Body,
		ResponseBody:     r.resp,
	}
	if r.err != nil {
		e.Error = r.err.Error()
	}
	r.s.access.Load().Log(ctx, &e)
	if r.routed {
		t := &q.Ticket
		o := &admission.Outcome{ClientRequestID: q.ID, Status: r.status, Usage: u, Backend: backend, Model: model, Latency: lat, Partial: partial}
		if q.Backend != nil {
			o.Provider, o.Upstream = string(q.Backend.Config.Provider), q.Target.UpstreamModel
		}
		r.s.gate.Settle(ctx, t, q.ReservationID, o)
		r.s.metrics.Spend(model, backend, float64(t.Cost(u))/1e6)
	}
	if r.s.onFinish != nil {
		r.s.onFinish()
	}
}

// settledUsage is the usage a request is billed. A stream is complete when
// its terminal event went to the client with the provider's usage known;
// then the provider's usage stands as reported. Any other stream (the
// client left, the upstream cut it, or it ended without a usage event) is
// partial: its completion is the larger of the usage observed and the
// tokens delivered, and a prompt the provider never reported is the
// reservation's prompt estimate, an upper bound. The provider's final
// usage, when it came, thus always wins over the count, and nothing is
// counted twice.
func (r *routerStream) settledUsage() (provider.Usage, bool) {
	u := r.usage
	if r.dv == nil || (r.dv.terminal && u.Known()) {
		return u, false
	}
	u.CompletionTokens = max(u.CompletionTokens, r.dv.tokens())
	if u.PromptTokens == 0 {
		// The reservation's estimate is an upper bound that counts text
		// bytes as tokens (and images by their documented cost); the BPE
		// count of the body, framing included, also bounds the prompt and
		// is far tighter for text. Take the smaller. Only streams that end
		// without the provider's usage pay for tokenizing.
		u.PromptTokens = r.s.gate.PromptEstimate(&r.req.Ticket, r.req.Body)
		if n, err := tokens.ForModel(r.req.Target.UpstreamModel).Count(r.req.Body); err == nil && n > 0 {
			u.PromptTokens = min(u.PromptTokens, int64(n))
		}
	}
	u.TotalTokens = max(u.TotalTokens, u.PromptTokens+u.CompletionTokens)
	return u, true
}

// Anthropic Messages ingress paths.
const (
	anthropicMessages    = "/v1/messages"
	anthropicCountTokens = "/v1/messages/count_tokens"
)

// anthIngress is stateless; streams hold per-request state.
var anthIngress = anthropicingress.New(bpeEstimator{})

// bpeEstimator counts count_tokens text with a real BPE tokenizer. Claude's
// own tokenizer is not public, so o200k_base stands in for it (documented
// in tokens.EncodingFor); the encoding loads on first use only.
type bpeEstimator struct{}

func (bpeEstimator) Tokens(model, text string) int {
	t, err := tokens.Get(tokens.EncodingFor(model))
	if err != nil {
		return anthropicingress.DefaultEstimator{}.Tokens(model, text)
	}
	return t.Count(text)
}

// countTokens answers POST /v1/messages/count_tokens without going
// upstream. A key is checked as for a Messages request, and the request
// takes a slot on the RPM and parallel counters (no tokens, no cost) for
// as long as its BPE count runs: counting costs CPU, so a key at its
// limit is refused before it.
func (r *routerStream) countTokens(ctx context.Context) *extprocv3.ProcessingResponse {
	q := &r.req
	if p := r.rt.Policy; p != nil && p.Active(r.s.gate) {
		// The body's only "model": a duplicate key is refused before a
		// key is checked against either value.
		model, err := anthropicingress.Model(q.Body)
		if err != nil {
			return r.fail(err)
		}
		k, model, err := r.s.gate.Authenticate(p, q.Authorization, q.APIKey, q.Path, model)
		q.Ticket.Key, q.Model = k, model // k also names a refusal's log line
		if err != nil {
			return r.fail(err)
		}
		// Per-model limits follow the resolved model, as for Messages.
		limitName := model
		if t, ok := r.rt.Routes.Resolve(model); ok {
			limitName = cmp.Or(t.LimitName(), model)
		}
		ar := &admission.Request{ID: q.ReservationID, Model: limitName, Session: q.Session}
		if err := r.s.gate.ReserveRequest(ctx, p, &q.Ticket, ar); err != nil {
			return r.fail(err)
		}
		defer r.s.gate.Release(ctx, &q.Ticket, q.ReservationID)
	}
	out, err := anthIngress.CountTokens(q.Body)
	if err != nil {
		return r.fail(err)
	}
	r.status, r.done = 200, true
	return immediateBody(200, &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		setHeader("content-type", "application/json"),
	}}, out, "weir_count_tokens")
}
