package harness

import (
	"context"
	"fmt"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// decoder is one filter of a decoder chain, downstream (the HCM's HTTP
// filters) or upstream (a cluster's upstream filters), as Envoy's filter
// manager drives it: every filter's decodeHeaders in order until one stops
// iteration, then the body, which resumes a stopped filter and goes on.
type decoder interface {
	// decodeHeaders reports whether the filter holds the headers (stops
	// iteration) until its decodeData.
	decodeHeaders(eos bool) (hold bool, lr *localReply)
	decodeData(body *[]byte) *localReply
}

// runChain drives a decoder chain the way Envoy's FilterManager does
// (filter_manager.cc decodeHeaders / decodeData): headers reach filter i+1
// only once filter i returned Continue for them. A filter that stops at
// headers gets the body first and releases both when it is done, so later
// filters see the headers after that body round trip; a filter that
// continued at headers (ext_proc request_header_mode SKIP:
// ext_proc.cc Filter::decodeHeaders returns Continue) lets later filters,
// the router included, see the headers before its body round trip. A local
// reply aborts the chain (filter_manager.cc sendLocalReply sets
// decoder_filter_chain_aborted_).
func runChain(fs []decoder, eos bool, body *[]byte) *localReply {
	dataAt := 0
	for i, f := range fs {
		hold, lr := f.decodeHeaders(eos)
		if lr != nil {
			return lr
		}
		if !hold || eos {
			continue
		}
		for ; dataAt <= i; dataAt++ {
			if lr := fs[dataAt].decodeData(body); lr != nil {
				return lr
			}
		}
	}
	if eos {
		return nil
	}
	for ; dataAt < len(fs); dataAt++ {
		if lr := fs[dataAt].decodeData(body); lr != nil {
			return lr
		}
	}
	return nil
}

// headerMutationDecoder is envoy.filters.http.header_mutation: request
// mutations at decodeHeaders, with %DYNAMIC_METADATA% as it stands then.
type headerMutationDecoder struct {
	h  *Harness
	hm *headermutationv3.HeaderMutation
	hd *headers
	x  *exchange
}

func (d *headerMutationDecoder) decodeHeaders(bool) (bool, *localReply) {
	d.h.headerMutationFilter(d.hm, d.hd, d.x)
	return false, nil
}

func (d *headerMutationDecoder) decodeData(*[]byte) *localReply { return nil }

// extProcDecoder is the request side of one ext_proc filter instance.
type extProcDecoder struct {
	p     *procStream
	hd    *headers
	env   *attrEnv
	limit int64 // buffer limit for a BUFFERED body
	// held: this filter sent the headers and still holds them, so its body
	// reply's header mutations apply (processor_state.cc: headers_ is set
	// only in Filter::onHeaders).
	held bool
}

func (d *extProcDecoder) decodeHeaders(eos bool) (bool, *localReply) {
	lr, held := d.p.decodeHeaders(d.hd, eos, d.env)
	d.held = held
	return held, lr
}

func (d *extProcDecoder) decodeData(body *[]byte) *localReply {
	return d.p.decodeBody(d.hd, body, d.held, d.limit, d.env)
}

// matchDelegate is envoy.filters.http.match_delegate around one filter
// (match_delegate/config.cc DelegatingStreamFilter): the match tree is
// evaluated on the request headers in decodeHeaders; a skip action, or no
// match tree at all, makes every callback Continue.
type matchDelegate struct {
	skip  func(*headers) bool
	hd    *headers
	inner decoder
	h     *Harness
	level string

	skipped bool
}

func (d *matchDelegate) decodeHeaders(eos bool) (bool, *localReply) {
	if d.skip(d.hd) {
		d.skipped = true
		d.h.stats.add(d.level + ".match_delegate_skipped")
		return false, nil
	}
	return d.inner.decodeHeaders(eos)
}

func (d *matchDelegate) decodeData(body *[]byte) *localReply {
	if d.skipped {
		return nil
	}
	return d.inner.decodeData(body)
}

// earlyMutation applies the HCM's early_header_mutation_extensions
// (header_mutation), which run before the route is picked.
func earlyMutation(ms []*mutationrulesv3.HeaderMutation, hd *headers) {
	for _, m := range ms {
		switch a := m.GetAction().(type) {
		case *mutationrulesv3.HeaderMutation_Remove:
			hd.del(strings.ToLower(a.Remove))
		case *mutationrulesv3.HeaderMutation_RemoveOnMatch_:
			sm := a.RemoveOnMatch.GetKeyMatcher()
			out := hd.kv[:0]
			for _, e := range hd.kv {
				if !stringMatch(sm.GetExact(), sm.GetPrefix(), e.k) {
					out = append(out, e)
				}
			}
			hd.kv = out
		}
	}
}

// decodeHeaders is ext_proc.cc Filter::decodeHeaders: the headers go to
// the server only with request_header_mode SEND; with a BUFFERED body the
// filter then holds them until its body reply (processor_state.cc
// handleHeadersResponse: "we're not ready to continue processing because
// then we won't be able to modify the headers any more"). content-length
// goes at decodeHeaders when the mode then in force cannot keep it
// (shouldRemoveContentLength).
func (p *procStream) decodeHeaders(h *headers, eos bool, env *attrEnv) (*localReply, bool) {
	// The message is built, then content-length goes right after the send
	// (before the reply) if the mode in force then cannot keep it.
	send := sendsHeaders(p.mode.GetRequestHeaderMode())
	var req *extprocv3.ProcessingRequest
	if send {
		req = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: h.proto(), EndOfStream: eos},
		}}
	}
	if !p.complete && stripsContentLength(p.mode.GetRequestBodyMode(), p.mode.GetRequestHeaderMode()) {
		h.del("content-length")
	}
	if !send {
		return nil, false
	}
	r, lr := p.roundTrip(req, phReqHeaders, env)
	if lr != nil || r == nil {
		return lr, false
	}
	cr := r.GetRequestHeaders().GetResponse()
	// A content-length set in the reply is skipped when the mode after any
	// override in this reply cannot keep it (W10: processHeaderMutation
	// reads shouldRemoveContentLength at reply time).
	if lr := p.applyCommon(cr, h, nil, true, true, stripsContentLength(p.mode.GetRequestBodyMode(), p.mode.GetRequestHeaderMode())); lr != nil {
		return lr, false
	}
	if cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		if bm := cr.GetBodyMutation(); bm != nil {
			p.replacedBody = bm.GetBody()
		}
		h.del("content-length")
		p.reqReplaced = true
		return nil, false
	}
	return nil, !eos && !p.complete && p.mode.GetRequestBodyMode() == extprocfilterv3.ProcessingMode_BUFFERED
}

// decodeBody is the BUFFERED request body (ext_proc.cc Filter::onData):
// buffered until end of stream, over the buffer limit a 413 local reply
// (the filter manager's request_payload_too_large), then one message, sent
// even for an empty body that ended on a data frame (handleDataBufferedMode
// on decodeData(end_stream=true)). Header mutations in the reply apply only
// while this filter holds the headers; with headers held, a body mutation
// is checked against content-length (handleBufferedBodyCallback,
// validateContentLength) whether or not the bytes changed.
func (p *procStream) decodeBody(h *headers, body *[]byte, held bool, limit int64, env *attrEnv) *localReply {
	if p.reqReplaced {
		*body = p.replacedBody
		return nil
	}
	if p.complete || p.mode.GetRequestBodyMode() != extprocfilterv3.ProcessingMode_BUFFERED {
		return nil
	}
	if limit > 0 && int64(len(*body)) > limit {
		p.h.stats.add("downstream_rq_too_large")
		return newLocal(413, "Payload Too Large", "request_payload_too_large")
	}
	r, lr := p.roundTrip(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: *body, EndOfStream: true},
	}}, phReqBody, env)
	if lr != nil || r == nil {
		return lr
	}
	cr := r.GetRequestBody().GetResponse()
	if !held && cr.GetHeaderMutation() != nil {
		// processor_state.cc processHeaderMutationIfAvailable: "Response
		// had header mutations but headers aren't available".
		p.count("header_mutations_dropped_headers_not_held")
	}
	if lr := p.applyCommon(cr, h, body, true, held, stripsContentLength(p.mode.GetRequestBodyMode(), p.mode.GetRequestHeaderMode())); lr != nil {
		return lr
	}
	if held {
		return checkContentLength(h, cr.GetBodyMutation())
	}
	return nil
}

// routerDecoder is envoy.filters.http.router's request side: at
// decodeHeaders it reads the route (recomputed only if a filter cleared
// it) and either answers a direct response or fixes the cluster
// (router.cc Filter::decodeHeaders); the body it receives is what it
// buffers and replays to every attempt.
type routerDecoder struct {
	h    *Harness
	x    *exchange
	body []byte

	routed bool
}

func (d *routerDecoder) decodeHeaders(bool) (bool, *localReply) {
	rt := d.x.currentRoute(d.h.l.routes)
	d.x.routed = rt
	d.routed = true
	if rt == nil {
		d.h.stats.add("no_route")
		return false, newLocal(404, "", "route_not_found")
	}
	if dr := rt.GetDirectResponse(); dr != nil {
		lr := newLocal(int(dr.GetStatus()), dr.GetBody().GetInlineString(), "direct_response")
		for _, o := range rt.GetResponseHeadersToAdd() {
			lr.hdr.set(strings.ToLower(o.GetHeader().GetKey()), o.GetHeader().GetValue())
		}
		return false, lr
	}
	return false, nil
}

func (d *routerDecoder) decodeData(body *[]byte) *localReply {
	d.body = *body
	return nil
}

// codecDecoder is envoy.filters.http.upstream_codec: it encodes the
// headers as they stand at its decodeHeaders (a filter that continued
// without holding them can no longer change them) and then the body.
type codecDecoder struct {
	hd   *headers
	sent *headers
	body []byte
}

func (d *codecDecoder) decodeHeaders(bool) (bool, *localReply) {
	d.sent = d.hd.clone()
	return false, nil
}

func (d *codecDecoder) decodeData(body *[]byte) *localReply {
	d.body = *body
	return nil
}

// downstreamChain builds the listener's decoder chain for one request.
func (h *Harness) downstreamChain(ctx context.Context, x *exchange) ([]decoder, []*procStream, *routerDecoder, error) {
	var ds []decoder
	var procs []*procStream
	var rd *routerDecoder
	for _, f := range h.l.filters {
		switch f.kind {
		case kindHeaderMutation:
			ds = append(ds, &headerMutationDecoder{h: h, hm: f.hm, hd: x.req, x: x})
		case kindExtProc:
			// Per-route config merges from the route cached when the
			// filter runs (ext_proc.cc mergePerRouteConfig).
			p := h.newProcStream(ctx, f.ep, x, x.currentRoute(h.l.routes), nil)
			if p == nil {
				continue
			}
			procs = append(procs, p)
			d := &extProcDecoder{p: p, hd: x.req, env: x.env(nil, ""), limit: h.l.bufferLimit}
			if f.match != nil {
				ds = append(ds, &matchDelegate{skip: f.match, hd: x.req, inner: d, h: h, level: "router"})
			} else {
				ds = append(ds, d)
			}
		case kindRouter:
			rd = &routerDecoder{h: h, x: x}
			ds = append(ds, rd)
		default:
			return nil, nil, nil, fmt.Errorf("filter %s cannot run downstream", f.name)
		}
	}
	return ds, procs, rd, nil
}
