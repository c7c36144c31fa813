package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// localReply is a response Envoy makes itself (sendLocalReply).
type localReply struct {
	status  int
	hdr     *headers
	body    []byte
	details string
}

func newLocal(status int, body, details string) *localReply {
	return &localReply{status: status, hdr: &headers{}, body: []byte(body), details: details}
}

// procStream is one ext_proc filter instance on one request: one gRPC
// stream, opened lazily on the first message and shared by both
// directions [CC openStream].
type procStream struct {
	h   *Harness
	cfg *extProcCfg
	x   *exchange

	ctx    context.Context
	cancel context.CancelFunc
	cl     extprocv3.ExternalProcessor_ProcessClient
	recv   chan recvResult

	sentAny       bool
	reqAttrsSent  bool
	respAttrsSent bool
	// complete: after an immediate response, a server close or an allowed
	// failure Envoy sends nothing more on this stream [CC processing_complete_].
	complete bool
	// mode is what currently applies: the per-route config, then any
	// mode_override.
	mode *extprocfilterv3.ProcessingMode
	// reqReplaced: CONTINUE_AND_REPLACE at request headers ends request
	// processing on this stream, and replacedBody is the body it set.
	reqReplaced  bool
	replacedBody []byte
	host         *endpoint
}

type recvResult struct {
	r   *extprocv3.ProcessingResponse
	err error
}

// newProcStream merges per-route config: ExtProcPerRoute can disable the
// filter or replace its processing mode [EP ExtProcPerRoute]. nil means
// the filter is disabled on this route.
func (h *Harness) newProcStream(ctx context.Context, cfg *extProcCfg, x *exchange, route *routev3.Route, host *endpoint) *procStream {
	mode := cfg.mode
	if route != nil {
		if a := route.GetTypedPerFilterConfig()[cfg.name]; a != nil {
			pr := &extprocfilterv3.ExtProcPerRoute{}
			if err := a.UnmarshalTo(pr); err == nil {
				if pr.GetDisabled() {
					return nil
				}
				if m := pr.GetOverrides().GetProcessingMode(); m != nil {
					mode = m
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	return &procStream{h: h, cfg: cfg, x: x, ctx: ctx, cancel: cancel, mode: proto.Clone(mode).(*extprocfilterv3.ProcessingMode), host: host}
}

func (p *procStream) level() string {
	if p.cfg.upstream {
		return "upstream"
	}
	return "router"
}

func (p *procStream) count(name string) { p.h.stats.add(p.level() + "." + name) }

// close ends the gRPC stream the way Envoy 1.37 does once nothing more is
// needed: a half-close, then the stream is torn down.
func (p *procStream) close() {
	if p.cl != nil {
		_ = p.cl.CloseSend()
	}
	p.cancel()
}

func (p *procStream) open() error {
	md := metadata.MD{}
	for _, hv := range p.cfg.initialMetadata {
		md.Append(hv.GetKey(), hv.GetValue())
	}
	ctx := metadata.NewOutgoingContext(p.ctx, md)
	cl, err := p.h.extProcClient(p.cfg.cluster).Process(ctx)
	if err != nil {
		return err
	}
	p.cl = cl
	p.recv = make(chan recvResult, 1)
	p.count("streams")
	go func() {
		for {
			r, err := cl.Recv()
			select {
			case p.recv <- recvResult{r, err}:
			case <-p.ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

type phase int

const (
	phReqHeaders phase = iota
	phReqBody
	phRespHeaders
	phRespBody
)

func (ph phase) String() string {
	return [...]string{"request_headers", "request_body", "response_headers", "response_body"}[ph]
}

func (ph phase) request() bool { return ph <= phReqBody }

// roundTrip sends one message and waits for its reply. It returns (nil,
// nil) when the stream no longer takes part (processing complete or an
// allowed failure), and a local reply when Envoy would end the request.
func (p *procStream) roundTrip(req *extprocv3.ProcessingRequest, ph phase, env *attrEnv) (*extprocv3.ProcessingResponse, *localReply) {
	if p.complete {
		return nil, nil
	}
	if p.cl == nil {
		if err := p.open(); err != nil {
			return nil, p.failure(fmt.Sprintf("ext_proc_error_gRPC_error_%d", status.Code(err)), p.cfg.statusOnError)
		}
	}
	if !p.sentAny {
		// protocol_config rides only on the first message [SVC].
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  p.mode.GetRequestBodyMode(),
			ResponseBodyMode: p.mode.GetResponseBodyMode(),
		}
		p.sentAny = true
	}
	// Attributes go once per direction, on its first message [PS sendAttributes].
	if ph.request() && !p.reqAttrsSent {
		req.Attributes = p.cfg.reqAttrs.eval(env)
		p.reqAttrsSent = true
	} else if !ph.request() && !p.respAttrsSent {
		req.Attributes = p.cfg.respAttrs.eval(env)
		p.respAttrsSent = true
	}
	req.MetadataContext = p.x.forward(p.cfg.forwardNS)
	p.count("msgs." + ph.String())
	if err := p.cl.Send(req); err != nil {
		return p.grpcError(err)
	}
	timer := time.NewTimer(p.cfg.timeout)
	defer timer.Stop()
	for {
		select {
		case rr := <-p.recv:
			if rr.err != nil {
				return p.grpcError(rr.err)
			}
			r := rr.r
			if r.GetOverrideMessageTimeout() != nil {
				// Only extends the timer; the rest of the message is ignored
				// [SVC override_message_timeout]. max_message_timeout is not
				// configured by Weir, so Envoy would ignore it too.
				p.count("override_message_timeout_ignored")
				continue
			}
			return p.accept(r, ph)
		case <-timer.C:
			p.count("message_timeouts")
			return nil, p.failure("ext_proc_error_per-message_timeout_exceeded", 504)
		case <-p.ctx.Done():
			return nil, newLocal(499, "", "downstream_remote_disconnect")
		}
	}
}

func (p *procStream) grpcError(err error) (*extprocv3.ProcessingResponse, *localReply) {
	if errors.Is(err, io.EOF) {
		// The server closed cleanly: Envoy finishes the request without it
		// [SVC item 6].
		p.complete = true
		p.count("server_half_closed")
		return nil, nil
	}
	if p.ctx.Err() != nil {
		return nil, newLocal(499, "", "downstream_remote_disconnect")
	}
	return nil, p.failure(fmt.Sprintf("ext_proc_error_gRPC_error_%d{%s}", status.Code(err), status.Convert(err).Message()), p.cfg.statusOnError)
}

// failure ends the request, or with failure_mode_allow drops the server
// and continues unmodified [EP failure_mode_allow].
func (p *procStream) failure(details string, code int) *localReply {
	p.complete = true
	if p.cfg.failureModeAllow {
		p.count("failure_mode_allowed")
		return nil
	}
	p.h.log.Debug("ext_proc failure", "level", p.level(), "details", details)
	return newLocal(code, "", strings.ReplaceAll(details, " ", "_"))
}

// accept checks the reply kind, applies dynamic metadata and turns an
// immediate response into a local reply.
func (p *procStream) accept(r *extprocv3.ProcessingResponse, ph phase) (*extprocv3.ProcessingResponse, *localReply) {
	// Dynamic metadata is written before the rest of the reply, also for
	// an immediate response [CC setDynamicMetadata].
	p.x.receive(r.GetDynamicMetadata(), p.cfg.receiveNS)
	if ir := r.GetImmediateResponse(); ir != nil {
		p.complete = true
		p.count("immediate_responses_sent")
		st := int(ir.GetStatus().GetCode())
		if st < 200 {
			st = 200
		}
		lr := &localReply{status: st, hdr: &headers{}, body: ir.GetBody(), details: strings.ReplaceAll(ir.GetDetails(), " ", "_")}
		// Header failures are logged and the reply still goes out [CC sendImmediateResponse].
		if _, err := applyMutation(lr.hdr, ir.GetHeaders(), p.cfg.rules, false); err != nil {
			p.h.log.Debug("immediate response header mutation rejected", "error", err)
		}
		return nil, lr
	}
	ok := false
	switch ph {
	case phReqHeaders:
		ok = r.GetRequestHeaders() != nil
	case phReqBody:
		ok = r.GetRequestBody() != nil
	case phRespHeaders:
		ok = r.GetResponseHeaders() != nil
	case phRespBody:
		ok = r.GetResponseBody() != nil
	}
	if !ok {
		// Spurious reply: fail closed since envoy#39994 (runtime
		// ext_proc_fail_close_spurious_resp, on in 1.37).
		p.count("spurious_msgs_received")
		// handleErrorResponse uses the status message as details.
		return nil, p.failure("spurious message", p.cfg.statusOnError)
	}
	if mo := r.GetModeOverride(); mo != nil {
		p.override(mo, ph)
	}
	return r, nil
}

// override applies mode_override only on header replies with
// allow_mode_override; body modes replace both configured body modes, and
// the request header mode is ignored. Header and trailer modes left DEFAULT
// come from the FILTER-level config, not the per-route or current mode
// (ext_proc.cc onReceiveMessage: effectiveModeOverride(response->mode_override(),
// config_->processingMode())).
func (p *procStream) override(mo *extprocfilterv3.ProcessingMode, ph phase) {
	if !p.cfg.allowOverride || (ph != phReqHeaders && ph != phRespHeaders) {
		p.count("mode_override_ignored")
		return
	}
	m := proto.Clone(p.cfg.mode).(*extprocfilterv3.ProcessingMode)
	if mo.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.ResponseHeaderMode = mo.GetResponseHeaderMode()
	}
	if mo.GetRequestTrailerMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.RequestTrailerMode = mo.GetRequestTrailerMode()
	}
	if mo.GetResponseTrailerMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.ResponseTrailerMode = mo.GetResponseTrailerMode()
	}
	m.RequestBodyMode = mo.GetRequestBodyMode()
	m.ResponseBodyMode = mo.GetResponseBodyMode()
	p.mode = m
	p.count("mode_overrides")
}

func sendsHeaders(m extprocfilterv3.ProcessingMode_HeaderSendMode) bool {
	return m != extprocfilterv3.ProcessingMode_SKIP
}

// stripsContentLength follows PS shouldRemoveContentLength: streamed
// modes, or BUFFERED while headers are not sent, cannot keep a length
// that a body mutation may change.
func stripsContentLength(body extprocfilterv3.ProcessingMode_BodySendMode, hdr extprocfilterv3.ProcessingMode_HeaderSendMode) bool {
	switch body {
	case extprocfilterv3.ProcessingMode_STREAMED, extprocfilterv3.ProcessingMode_BUFFERED_PARTIAL, extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		return true
	case extprocfilterv3.ProcessingMode_BUFFERED:
		return !sendsHeaders(hdr)
	}
	return false
}

// applyCommon applies a CommonResponse to a message that is still held
// (headers, or a buffered body with its headers).
func (p *procStream) applyCommon(cr *extprocv3.CommonResponse, h *headers, body *[]byte, request, headersHeld, dropCL bool) *localReply {
	if cr == nil {
		return nil
	}
	if hm := cr.GetHeaderMutation(); hm != nil {
		if !headersHeld {
			p.count("header_mutations_ignored_streamed")
		} else {
			n, err := applyMutation(h, hm, p.cfg.rules, dropCL)
			if n > 0 {
				p.h.stats.addN(p.level()+".rejected_header_mutations", int64(n))
			}
			if err != nil {
				return newLocal(500, "", "ext_proc_error_header_mutation")
			}
		}
	}
	if cr.GetClearRouteCache() {
		switch {
		case !request:
			// EncodingProcessorState does not override clearRouteCache; the
			// base is a no-op and counts nothing (processor_state.h).
		case p.cfg.upstream:
			p.count("clear_route_cache_upstream_ignored")
		case cr.GetHeaderMutation() == nil:
			// Honoured only alongside a header mutation [PS clearRouteCache].
			p.count("clear_route_cache_ignored")
		default:
			p.x.cleared = true
			p.count("clear_route_cache")
		}
	}
	if bm := cr.GetBodyMutation(); bm != nil && body != nil {
		switch m := bm.GetMutation().(type) {
		case *extprocv3.BodyMutation_Body:
			*body = m.Body
		case *extprocv3.BodyMutation_ClearBody:
			if m.ClearBody {
				*body = nil
			}
		}
	}
	return nil
}

// checkContentLength is processor_state.cc handleBufferedBodyCallback's
// validateContentLength: with the headers held, any body_mutation (even one
// that leaves the bytes alone, an unset oneof or clear_body) is checked
// against the content-length the headers now carry, using the size of
// body_mutation.body() (0 unless it sets a body).
func checkContentLength(h *headers, bm *extprocv3.BodyMutation) *localReply {
	if bm == nil || !h.has("content-length") {
		return nil
	}
	n, err := strconv.Atoi(h.get("content-length"))
	if err != nil || n != len(bm.GetBody()) {
		return newLocal(500, "", "mismatch_between_content_length_and_the_length_of_the_mutated_body")
	}
	return nil
}

// encodeHeaders runs the response headers phase. It reports whether the
// body must be buffered before headers go downstream.
func (p *procStream) encodeHeaders(h *headers, endOfStream bool, env *attrEnv) *localReply {
	// ext_proc.cc encodeHeaders: the message is sent, then content-length
	// is removed if the mode in force at that moment cannot keep it; a
	// mode_override in the reply comes later, so an override to STREAMED
	// keeps the upstream's content-length [M2; AIGW #2391].
	send := !p.complete && sendsHeaders(p.mode.GetResponseHeaderMode())
	var req *extprocv3.ProcessingRequest
	if send {
		req = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
			ResponseHeaders: &extprocv3.HttpHeaders{Headers: h.proto(), EndOfStream: endOfStream},
		}}
	}
	if !p.complete && stripsContentLength(p.mode.GetResponseBodyMode(), p.mode.GetResponseHeaderMode()) {
		h.del("content-length")
	}
	if !send {
		return nil
	}
	r, lr := p.roundTrip(req, phRespHeaders, env)
	if lr != nil || r == nil {
		return lr
	}
	return p.applyCommon(r.GetResponseHeaders().GetResponse(), h, nil, false, true,
		stripsContentLength(p.mode.GetResponseBodyMode(), p.mode.GetResponseHeaderMode()))
}

// bodyMode is the response body mode now in force for this stream.
func (p *procStream) respBodyMode() extprocfilterv3.ProcessingMode_BodySendMode {
	if p.complete {
		return extprocfilterv3.ProcessingMode_NONE
	}
	return p.mode.GetResponseBodyMode()
}

// encodeBuffered sends the whole response body in one message.
func (p *procStream) encodeBuffered(h *headers, body *[]byte, env *attrEnv) *localReply {
	r, lr := p.roundTrip(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: *body, EndOfStream: true},
	}}, phRespBody, env)
	if lr != nil || r == nil {
		return lr
	}
	cr := r.GetResponseBody().GetResponse()
	if lr := p.applyCommon(cr, h, body, false, true, stripsContentLength(p.mode.GetResponseBodyMode(), p.mode.GetResponseHeaderMode())); lr != nil {
		return lr
	}
	return checkContentLength(h, cr.GetBodyMutation())
}

// encodeChunk sends one streamed chunk and returns what replaces it.
// Header mutations in streamed body replies are dropped: headers have
// already gone downstream [PS handleStreamedBodyResponse].
func (p *procStream) encodeChunk(chunk []byte, eos bool, env *attrEnv) ([]byte, *localReply) {
	r, lr := p.roundTrip(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: chunk, EndOfStream: eos},
	}}, phRespBody, env)
	if lr != nil || r == nil {
		return chunk, lr
	}
	out := chunk
	if lr := p.applyCommon(r.GetResponseBody().GetResponse(), nil, &out, false, false, true); lr != nil {
		return nil, lr
	}
	return out, nil
}

// forward builds metadata_context from the forwarding namespaces
// [CC addDynamicMetadata].
func (x *exchange) forward(ns []string) *corev3.Metadata {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, n := range ns {
		if s, ok := x.md[n]; ok {
			md.FilterMetadata[n] = proto.Clone(s).(*structpb.Struct)
		}
	}
	return md
}

// receive writes dynamic metadata for the receiving namespaces only;
// others are dropped [CC setDynamicMetadata]. Fields merge into the
// namespace, as Envoy's StreamInfo::setDynamicMetadata does.
func (x *exchange) receive(dm *structpb.Struct, ns []string) {
	if dm == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for n, v := range dm.GetFields() {
		allowed := false
		for _, a := range ns {
			allowed = allowed || a == n
		}
		sv := v.GetStructValue()
		if !allowed || sv == nil {
			continue
		}
		cur := x.md[n]
		if cur == nil {
			cur = &structpb.Struct{Fields: map[string]*structpb.Value{}}
			x.md[n] = cur
		}
		for k, f := range sv.GetFields() {
			cur.Fields[k] = f
		}
	}
}
