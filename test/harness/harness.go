// Package harness plays Envoy's part for end-to-end tests. It reads the
// resources `weirctl envoy-config` generates (controller/xds) and runs a
// request the way Envoy 1.37 would: listener HTTP filters, the
// router-level ext_proc filter, route selection by header after
// clear_route_cache, one upstream filter chain (with its own ext_proc
// stream) per attempt, the upstream HTTP call, and the response back
// through the router-level filter with mode_override and streamed chunks.
//
// It is not Envoy. It emulates only what Weir's config uses and refuses,
// at New, any config outside that subset, so the generated config and the
// emulation cannot drift apart silently. test/README.md lists each
// behaviour with the Envoy source it follows.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/controller/xds"
)

// Options configure a [Harness].
type Options struct {
	// ExtProc, if set, serves every ext_proc filter, instead of dialing
	// the extproc cluster from the config.
	ExtProc extprocv3.ExternalProcessorClient
	// ExtProcAddress overrides the extproc cluster's endpoint:
	// "host:port" or "unix:///path".
	ExtProcAddress string
	// ExtProcDialer dials the extproc, for example an in-memory listener.
	ExtProcDialer func(ctx context.Context, addr string) (net.Conn, error)
	// UpstreamTransport makes the upstream HTTP calls (the upstream
	// codec). Nil uses an http.Transport that dials the cluster endpoint.
	UpstreamTransport http.RoundTripper
	Logger            *slog.Logger
	// RequestID, if set, picks the x-request-id (and request.id) Envoy
	// passes on, from what the client sent ("" when absent). It emulates
	// a request Envoy treats as internal (internal_address_config, a
	// private load balancer in front), whose x-request-id Envoy keeps.
	// Nil: a fresh UUID per request, as for an external client.
	RequestID func(client string) string
}

// Harness is an http.Handler standing in for Envoy's listener.
type Harness struct {
	l         *listenerCfg
	clusters  map[string]*clusterCfg
	conns     []*grpc.ClientConn
	clients   map[string]extprocv3.ExternalProcessorClient
	transport http.RoundTripper
	log       *slog.Logger
	requestID func(string) string
	stats     stats
	rr        atomic.Uint64
	// tlsTransports dial each TLS cluster with its own verification.
	tlsTransports map[string]*http.Transport
	// onUpstreamEOF, set by tests, runs when a response body has been
	// read to its end.
	onUpstreamEOF func()
}

var reFormat = regexp.MustCompile(`%([A-Z_]+)(\(([^)]*)\))?%`)

// New builds a harness from generated resources.
func New(res *xds.Resources, o Options) (*Harness, error) {
	if res == nil || len(res.Listeners) != 1 {
		return nil, errors.New("harness: exactly one listener is emulated")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Harness{clusters: map[string]*clusterCfg{}, clients: map[string]extprocv3.ExternalProcessorClient{}, log: o.Logger, requestID: o.RequestID}
	// Each TLS cluster verifies its peer as its UpstreamTlsContext says,
	// the extproc cluster (mTLS) included.
	tlsCfgs, err := clusterTLSConfigs(res.Clusters)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if h.l, err = parseListener(res.Listeners[0], res.Routes); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if err := checkRoutes(h.l.routes); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	for _, c := range res.Clusters {
		cc, err := parseCluster(c)
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		h.clusters[cc.name] = cc
	}
	// Every filter's formatter strings and ext_proc cluster must be usable.
	filters := append([]httpFilter(nil), h.l.filters...)
	for _, cc := range h.clusters {
		filters = append(filters, cc.filters...)
	}
	for _, f := range filters {
		switch f.kind {
		case kindHeaderMutation:
			for _, m := range f.hm.GetMutations().GetRequestMutations() {
				for _, sub := range reFormat.FindAllStringSubmatch(m.GetAppend().GetHeader().GetValue(), -1) {
					if sub[1] != "DYNAMIC_METADATA" {
						return nil, fmt.Errorf("harness: formatter %%%s%% is not emulated", sub[1])
					}
				}
			}
		case kindExtProc:
			if _, ok := h.clients[f.ep.cluster]; ok {
				continue
			}
			if o.ExtProc != nil {
				h.clients[f.ep.cluster] = o.ExtProc
				continue
			}
			cc := h.clusters[f.ep.cluster]
			if cc == nil {
				return nil, fmt.Errorf("harness: ext_proc cluster %q not in resources", f.ep.cluster)
			}
			target := o.ExtProcAddress
			if target == "" {
				ep := cc.endpoints[0]
				target = ep.addr
				if ep.unix {
					target = "unix://" + ep.addr
				}
			}
			if !strings.HasPrefix(target, "unix://") {
				target = "passthrough:///" + target
			}
			creds := insecure.NewCredentials()
			if tc := tlsCfgs[f.ep.cluster]; tc != nil {
				creds = credentials.NewTLS(tc)
			}
			opts := []grpc.DialOption{
				grpc.WithTransportCredentials(creds),
				// Envoy's gRPC client has no message size limit by default;
				// buffered bodies travel whole.
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)),
			}
			if o.ExtProcDialer != nil {
				opts = append(opts, grpc.WithContextDialer(o.ExtProcDialer))
			}
			conn, err := grpc.NewClient(target, opts...)
			if err != nil {
				h.Close()
				return nil, fmt.Errorf("harness: dial extproc: %w", err)
			}
			h.conns = append(h.conns, conn)
			h.clients[f.ep.cluster] = extprocv3.NewExternalProcessorClient(conn)
		}
	}
	for _, cc := range h.clusters {
		for _, ep := range cc.endpoints {
			if ep.unix && len(cc.filters) > 0 {
				return nil, fmt.Errorf("harness: cluster %s: unix endpoints for HTTP upstreams are not emulated", cc.name)
			}
		}
	}
	h.transport = o.UpstreamTransport
	if h.transport == nil {
		h.tlsTransports = upstreamTLSTransports(tlsCfgs)
		h.transport = &http.Transport{
			Proxy:               nil,
			DisableCompression:  true, // Envoy passes encoded bodies through
			MaxIdleConnsPerHost: 64,
			ForceAttemptHTTP2:   false,
		}
	}
	return h, nil
}

// Close releases gRPC connections and idle upstream connections.
func (h *Harness) Close() error {
	var errs []error
	for _, c := range h.conns {
		errs = append(errs, c.Close())
	}
	if t, ok := h.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	for _, t := range h.tlsTransports {
		t.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

func (h *Harness) extProcClient(cluster string) extprocv3.ExternalProcessorClient {
	return h.clients[cluster]
}

// Stats returns a snapshot of the counters, named after Envoy's ext_proc
// statistics where one exists, prefixed by filter level ("router." or
// "upstream.").
func (h *Harness) Stats() map[string]int64 { return h.stats.snapshot() }

type stats struct {
	mu sync.Mutex
	m  map[string]int64
}

func (s *stats) add(k string) { s.addN(k, 1) }

func (s *stats) addN(k string, n int64) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]int64{}
	}
	s.m[k] += n
	s.mu.Unlock()
}

func (s *stats) snapshot() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

// exchange is one downstream request: Envoy's stream, with its StreamInfo
// (request id, dynamic metadata) shared by the router-level filter and
// every upstream attempt [source/docs/upstream_filters.md].
type exchange struct {
	id   string
	req  *headers
	body []byte
	// route is the cached route: computed from the client's headers before
	// any HTTP filter runs, and again from the current headers only after
	// a filter cleared it (conn_manager_impl.cc ActiveStream::decodeHeaders
	// refreshCachedRoute; clearRouteCache).
	route   *routev3.Route
	cleared bool
	// routed is the route the router fixed at its decodeHeaders.
	routed *routev3.Route
	mu     sync.Mutex
	md     map[string]*structpb.Struct
}

func (x *exchange) currentRoute(rc *routev3.RouteConfiguration) *routev3.Route {
	if x.cleared {
		x.route, x.cleared = matchRoute(rc, x.req), false
	}
	return x.route
}

func (x *exchange) env(host *endpoint, cluster string) *attrEnv {
	return &attrEnv{req: x.req, id: x.id, host: host, cluster: cluster, scheme: "http", protocol: "HTTP/1.1"}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (h *Harness) newExchange(r *http.Request) *exchange {
	hd := fromHTTP(r.Header)
	// Envoy treats the client as external (use_remote_address): it strips
	// x-envoy-* request headers and sets a fresh x-request-id, since
	// preserve_external_request_id defaults to false.
	out := hd.kv[:0]
	for _, e := range hd.kv {
		if !strings.HasPrefix(e.k, "x-envoy-") && e.k != "x-request-id" && e.k != "host" {
			out = append(out, e)
		}
	}
	hd.kv = out
	id := newRequestID()
	if h.requestID != nil {
		id = h.requestID(r.Header.Get("x-request-id"))
	}
	path := r.URL.RequestURI()
	pseudo := []kv{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", "http"}}
	hd.kv = append(pseudo, hd.kv...)
	hd.set("x-request-id", id)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prev := hd.get("x-forwarded-for"); prev != "" {
			hd.set("x-forwarded-for", prev+","+host)
		} else {
			hd.set("x-forwarded-for", host)
		}
	}
	hd.set("x-forwarded-proto", "http")
	return &exchange{id: id, req: hd, md: map[string]*structpb.Struct{}}
}

// ServeHTTP runs one request through the emulated listener.
func (h *Harness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	h.stats.add("downstream_rq_total")
	x := h.newExchange(r)
	// early_header_mutation_extensions run first, then the route is picked
	// from the client's headers before any HTTP filter
	// (conn_manager_impl.cc ActiveStream::decodeHeaders).
	earlyMutation(h.l.early, x.req)
	x.route = matchRoute(h.l.routes, x.req)
	// No body: the codec delivers the headers with end_stream (an HTTP/1
	// request without content-length or chunked framing, or with
	// content-length 0).
	eos := r.ContentLength == 0
	if !eos {
		body, err := io.ReadAll(io.LimitReader(r.Body, h.l.bufferLimit+1))
		if err != nil {
			return // the client went away
		}
		x.body = body
	}

	ds, procs, rd, err := h.downstreamChain(ctx, x)
	defer func() {
		for _, p := range procs {
			p.close()
		}
	}()
	if err != nil {
		h.log.Error("harness: chain", "error", err)
		h.writeLocal(w, newLocal(500, "", "harness_chain_error"))
		return
	}
	if lr := runChain(ds, eos, &x.body); lr != nil {
		// Any local reply before the response started goes through the
		// encoder filters (filter_manager.cc sendLocalReply ->
		// sendLocalReplyViaFilterChain); an ext_proc filter whose
		// processing is complete (it sent the immediate response itself)
		// skips it (ext_proc.cc encodeHeaders).
		h.stats.add("local_replies")
		h.encode(ctx, w, x, procs, h.localResponse(lr))
		return
	}
	if rd == nil || !rd.routed {
		h.writeLocal(w, newLocal(500, "", "harness_no_router"))
		return
	}
	rd.body = x.body
	resp := h.router(ctx, x, rd.body, eos)
	defer resp.close()
	h.encode(ctx, w, x, procs, resp)
}

// response is what the router hands back up the filter chain: an upstream
// response or one of Envoy's own replies.
type response struct {
	hdr     *headers // includes :status
	body    io.ReadCloser
	host    *endpoint
	cluster string
	cancel  context.CancelFunc
}

func (r *response) close() {
	if r.body != nil {
		r.body.Close()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

func (r *response) status() int {
	n, _ := strconv.Atoi(r.hdr.get(":status"))
	return n
}

// localResponse turns a local reply into a response that still passes
// through the encoder filters, as Envoy's sendLocalReply does for replies
// made by the router [CC encodeHeaders; AIGW #420].
func (h *Harness) localResponse(lr *localReply) *response {
	lr = h.mapLocal(lr)
	hd := &headers{}
	hd.set(":status", strconv.Itoa(lr.status))
	hd.kv = append(hd.kv, lr.hdr.kv...)
	if !hd.has("content-type") && len(lr.body) > 0 {
		hd.set("content-type", "text/plain")
	}
	hd.set("content-length", strconv.Itoa(len(lr.body)))
	return &response{hdr: hd, body: io.NopCloser(bytes.NewReader(lr.body))}
}

// mapLocal applies the HCM local_reply_config mappers.
func (h *Harness) mapLocal(lr *localReply) *localReply {
	for _, m := range h.l.mappers {
		if m.status != lr.status {
			continue
		}
		if m.body != "" {
			lr.body = []byte(m.body)
		}
		if m.contentType != "" {
			lr.hdr.set("content-type", m.contentType)
		}
		break
	}
	return lr
}

func (h *Harness) writeLocal(w http.ResponseWriter, lr *localReply) {
	h.stats.add("local_replies")
	resp := h.localResponse(lr)
	h.writeHeaders(w, resp.hdr)
	_, _ = w.Write(lr.body)
}

func (h *Harness) writeHeaders(w http.ResponseWriter, hd *headers) {
	st, err := strconv.Atoi(hd.get(":status"))
	if err != nil || st < 100 || st > 999 {
		st = 502
	}
	dst := w.Header()
	for _, e := range hd.kv {
		switch e.k {
		case "transfer-encoding", "connection", "keep-alive":
			continue
		}
		if !strings.HasPrefix(e.k, ":") {
			dst.Add(e.k, e.v)
		}
	}
	w.WriteHeader(st)
}

// headerMutationFilter applies header_mutation request mutations, with
// %DYNAMIC_METADATA(ns:key)% substitution.
func (h *Harness) headerMutationFilter(hm *headermutationv3.HeaderMutation, hd *headers, x *exchange) {
	for _, m := range hm.GetMutations().GetRequestMutations() {
		if k := m.GetRemove(); k != "" {
			hd.del(strings.ToLower(k))
			continue
		}
		a := m.GetAppend()
		if a == nil {
			continue
		}
		k := strings.ToLower(a.GetHeader().GetKey())
		v := x.format(a.GetHeader().GetValue())
		if v == "" && !a.GetKeepEmptyValue() {
			continue
		}
		switch a.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			hd.add(k, v)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !hd.has(k) {
				hd.add(k, v)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			hd.set(k, v)
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if hd.has(k) {
				hd.set(k, v)
			}
		}
	}
}

// format expands %DYNAMIC_METADATA(ns:key)%; a missing value is "".
func (x *exchange) format(s string) string {
	return reFormat.ReplaceAllStringFunc(s, func(m string) string {
		sub := reFormat.FindStringSubmatch(m)
		parts := strings.Split(sub[3], ":")
		if sub[1] != "DYNAMIC_METADATA" || len(parts) < 2 {
			return ""
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		v := structpb.NewStructValue(x.md[parts[0]])
		for _, p := range parts[1:] {
			v = v.GetStructValue().GetFields()[p]
		}
		switch k := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			return k.StringValue
		case *structpb.Value_NumberValue:
			return strconv.FormatFloat(k.NumberValue, 'f', -1, 64)
		case *structpb.Value_BoolValue:
			return strconv.FormatBool(k.BoolValue)
		}
		return ""
	})
}

// router is Envoy's router filter: route (re)selection, direct responses,
// and upstream attempts with the route's retry policy.
func (h *Harness) router(ctx context.Context, x *exchange, body []byte, eos bool) *response {
	ra := x.routed.GetRoute()
	cc := h.clusters[ra.GetCluster()]
	if cc == nil {
		return h.localResponse(newLocal(503, "", "cluster_not_found"))
	}
	// The route timeout spans all attempts and the whole response
	// (Envoy's default is 15s; 0 disables it).
	timeout := 15 * time.Second
	if t := ra.GetTimeout(); t != nil {
		timeout = t.AsDuration()
	}
	actx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, timeout)
	}
	policy := ra.GetRetryPolicy()
	retries := 0
	if policy != nil {
		retries = 1
		if n := policy.GetNumRetries(); n != nil {
			retries = int(n.GetValue())
		}
	}
	for attempt := 0; ; attempt++ {
		host := h.pickHost(cc, attempt, policy)
		h.stats.add("upstream_rq_attempts")
		resp, final, err := h.attempt(actx, x, cc, host, body, eos)
		if err != nil {
			if actx.Err() == context.DeadlineExceeded {
				cancel()
				h.stats.add("upstream_rq_timeout")
				return h.localResponse(newLocal(504, "upstream request timeout", "upstream_response_timeout"))
			}
			if attempt < retries && retryOn(policy, 0, true) {
				h.stats.add("upstream_rq_retry")
				continue
			}
			cancel()
			return h.localResponse(newLocal(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure", "upstream_reset_before_response_started"))
		}
		// Local replies from upstream filters are never retried [router.proto].
		if !final && attempt < retries && retryOn(policy, resp.status(), false) {
			h.stats.add("upstream_rq_retry")
			resp.body.Close()
			continue
		}
		resp.cancel = cancel
		resp.host, resp.cluster = host, cc.name
		return resp
	}
}

func retryOn(p *routev3.RetryPolicy, status int, connErr bool) bool {
	for _, c := range strings.Split(p.GetRetryOn(), ",") {
		switch strings.TrimSpace(c) {
		case "5xx":
			if connErr || status >= 500 {
				return true
			}
		case "gateway-error":
			if connErr || status == 502 || status == 503 || status == 504 {
				return true
			}
		case "connect-failure", "reset":
			if connErr {
				return true
			}
		case "retriable-status-codes":
			for _, s := range p.GetRetriableStatusCodes() {
				if int(s) == status {
					return true
				}
			}
		}
	}
	return false
}

// pickHost takes the lowest priority level, or with the
// previous_priorities retry priority the level after those already
// tried; round robin within a level.
func (h *Harness) pickHost(cc *clusterCfg, attempt int, p *routev3.RetryPolicy) *endpoint {
	levels := map[uint32][]*endpoint{}
	var prios []uint32
	for i := range cc.endpoints {
		e := &cc.endpoints[i]
		if _, ok := levels[e.priority]; !ok {
			prios = append(prios, e.priority)
		}
		levels[e.priority] = append(levels[e.priority], e)
	}
	sort.Slice(prios, func(i, j int) bool { return prios[i] < prios[j] })
	lvl := 0
	if p.GetRetryPriority().GetName() == "envoy.retry_priorities.previous_priorities" {
		lvl = min(attempt, len(prios)-1)
	}
	hs := levels[prios[lvl]]
	return hs[int(h.rr.Add(1)-1)%len(hs)]
}

// attempt runs the cluster's upstream filter chain for one try. final is
// true for a local reply made by an upstream filter.
//
// Every attempt gets the router's one header map, so mutations an
// upstream filter made for an earlier attempt are still there
// (upstream_request.cc UpstreamRequest::acceptHeadersFromRouter passes
// *parent_.downstreamHeaders()), and a copy of the body the router
// buffered, which is the router-level filters' output (router.cc doRetry
// copies callbacks_->decodingBuffer()).
func (h *Harness) attempt(ctx context.Context, x *exchange, cc *clusterCfg, host *endpoint, buffered []byte, eos bool) (*response, bool, error) {
	hd := x.req
	body := append([]byte(nil), buffered...)
	env := &attrEnv{req: hd, id: x.id, host: host, cluster: cc.name, scheme: "http", protocol: "HTTP/1.1"}
	var procs []*procStream
	defer func() {
		for _, p := range procs {
			p.close()
		}
	}()
	var ds []decoder
	var codec *codecDecoder
	for _, f := range cc.filters {
		switch f.kind {
		case kindHeaderMutation:
			ds = append(ds, &headerMutationDecoder{h: h, hm: f.hm, hd: hd, x: x})
		case kindExtProc:
			// One filter instance, so one gRPC stream, per attempt.
			p := h.newProcStream(ctx, f.ep, x, nil, host)
			procs = append(procs, p)
			var d decoder = &extProcDecoder{p: p, hd: hd, env: env, limit: cc.bufferLimit}
			if f.match != nil {
				d = &matchDelegate{skip: f.match, hd: hd, inner: d, h: h, level: "upstream"}
			}
			ds = append(ds, d)
		case kindUpstreamCodec:
			codec = &codecDecoder{hd: hd}
			ds = append(ds, codec)
		}
	}
	if codec == nil {
		codec = &codecDecoder{hd: hd}
		ds = append(ds, codec)
	}
	if lr := runChain(ds, eos, &body); lr != nil {
		if lr.status == 499 {
			return nil, false, ctx.Err()
		}
		// It comes back through the router-level filter's response path
		// like an upstream response, and is never retried
		// (upstream_request.cc UpstreamFilterManager::sendLocalReply).
		h.stats.add("upstream.local_replies")
		return h.localResponse(lr), true, nil
	}
	if eos {
		codec.body = nil
	}
	resp, err := h.send(ctx, cc, host, codec.sent, codec.body)
	return resp, false, err
}

// send is the upstream codec: the HTTP/1.1 request as the headers and
// body stand after the upstream filters.
func (h *Harness) send(ctx context.Context, cc *clusterCfg, host *endpoint, hd *headers, body []byte) (*response, error) {
	scheme := "http"
	if cc.tls {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, hd.get(":method"), scheme+"://"+host.addr+hd.get(":path"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = hd.get(":authority")
	for _, e := range hd.kv {
		switch {
		case strings.HasPrefix(e.k, ":"), e.k == "host", e.k == "content-length", e.k == "transfer-encoding", e.k == "connection":
			continue
		}
		req.Header.Add(e.k, e.v)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		// Go writes "Go-http-client/1.1" into a request without one;
		// Envoy's codec sends the headers as they are (a user-agent is
		// added only by the HCM's add_user_agent, which the generated
		// config leaves off). A present-but-empty entry stops Go's.
		req.Header["User-Agent"] = nil
	}
	switch cl := hd.get("content-length"); {
	case cl != "":
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n != int64(len(body)) {
			return nil, fmt.Errorf("content-length %q for %d body bytes", cl, len(body))
		}
		req.ContentLength = n
	case len(body) > 0:
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	default:
		req.Body, req.ContentLength = http.NoBody, 0
	}
	rt := h.transport
	if t := h.tlsTransports[cc.name]; t != nil {
		rt = t
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	out := &headers{}
	out.set(":status", strconv.Itoa(resp.StatusCode))
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			out.add(strings.ToLower(k), v)
		}
	}
	if resp.ContentLength >= 0 && !out.has("content-length") && resp.Request.Method != "HEAD" {
		out.set("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	return &response{hdr: out, body: resp.Body}, nil
}

// encode runs the response through the router-level ext_proc filters (in
// reverse filter order) and writes it downstream.
func (h *Harness) encode(ctx context.Context, w http.ResponseWriter, x *exchange, procs []*procStream, resp *response) {
	env := x.env(resp.host, resp.cluster)
	env.status = resp.status()
	st := resp.status()
	eos := resp.hdr.get("content-length") == "0" || st == 204 || st == 304
	var rd *bodyReader
	if !eos {
		// The body keeps arriving while the headers message is out, as in
		// Envoy, where the codec dispatches data right after headers.
		rd = h.readBody(resp.body)
		defer rd.stop()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if lr := p.encodeHeaders(resp.hdr, eos, env); lr != nil {
			h.writeLocal(w, lr)
			return
		}
		// The whole body arrived before the headers reply and the mode now
		// in force wants it: it goes as one buffered message while the
		// headers are still held, whatever the body mode
		// (processor_state.cc handleHeadersResponse: complete_body_available_
		// -> sendBodyChunk(BufferedBodyCallback)).
		if len(procs) == 1 && rd != nil && p.respBodyMode() != extprocfilterv3.ProcessingMode_NONE && rd.completeNow() {
			body, ok := h.bufferedBody(ctx, w, rd)
			if !ok {
				return
			}
			h.stats.add("response_body_complete_before_headers_reply")
			if lr := p.encodeBuffered(resp.hdr, &body, env); lr != nil {
				h.writeLocal(w, lr)
				return
			}
			h.writeBuffered(w, resp.hdr, body)
			return
		}
	}
	if eos {
		h.writeHeaders(w, resp.hdr)
		return
	}
	buffered, streamed := false, false
	for _, p := range procs {
		switch p.respBodyMode() {
		case extprocfilterv3.ProcessingMode_BUFFERED:
			buffered = true
		case extprocfilterv3.ProcessingMode_STREAMED:
			streamed = true
		}
	}
	if buffered {
		body, ok := h.bufferedBody(ctx, w, rd)
		if !ok {
			return
		}
		for i := len(procs) - 1; i >= 0; i-- {
			p := procs[i]
			var lr *localReply
			switch p.respBodyMode() {
			case extprocfilterv3.ProcessingMode_BUFFERED:
				lr = p.encodeBuffered(resp.hdr, &body, env)
			case extprocfilterv3.ProcessingMode_STREAMED:
				body, lr = p.encodeChunk(body, true, env)
			}
			if lr != nil {
				h.writeLocal(w, lr)
				return
			}
		}
		h.writeBuffered(w, resp.hdr, body)
		return
	}
	// Headers go downstream right after the headers reply; later header
	// changes are impossible [PS handleHeadersResponse]. What arrived while
	// the headers were out goes as the first chunk
	// (sendBufferedDataInStreamedMode).
	h.writeHeaders(w, resp.hdr)
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	flush()
	for {
		chunk, end, err := rd.next()
		if err != nil {
			// Upstream reset mid-body: Envoy resets the downstream stream.
			h.stats.add("upstream_rq_reset_after_headers")
			panic(http.ErrAbortHandler)
		}
		if streamed {
			h.stats.add("response_chunks")
			for i := len(procs) - 1; i >= 0; i-- {
				if procs[i].respBodyMode() != extprocfilterv3.ProcessingMode_STREAMED {
					continue
				}
				var lr *localReply
				chunk, lr = procs[i].encodeChunk(chunk, end, env)
				if lr != nil {
					// Headers already went out: the stream is reset.
					panic(http.ErrAbortHandler)
				}
			}
		}
		if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return
			}
			flush()
		}
		if end {
			return
		}
	}
}

// bufferedBody waits for the whole response body. Over the buffer limit
// before the headers went downstream it is a 500 local reply
// [filter_manager.cc responseDataTooLarge]; ok is false when a reply was
// written.
func (h *Harness) bufferedBody(ctx context.Context, w http.ResponseWriter, rd *bodyReader) ([]byte, bool) {
	body, err := rd.all()
	if err != nil {
		h.writeLocal(w, h.readError(ctx, err))
		return nil, false
	}
	if int64(len(body)) > h.l.bufferLimit {
		h.writeLocal(w, newLocal(500, "Internal Server Error", "response_payload_too_large"))
		return nil, false
	}
	return body, true
}

// writeBuffered sends a buffered response downstream, its content-length
// (if it has one) matching the body as the filters left it.
func (h *Harness) writeBuffered(w http.ResponseWriter, hd *headers, body []byte) {
	if hd.has("content-length") {
		hd.set("content-length", strconv.Itoa(len(body)))
	}
	h.writeHeaders(w, hd)
	_, _ = w.Write(body)
}

// bodyReader reads an upstream body in the background, chunk by chunk,
// so the harness can tell what had arrived at a given moment.
type bodyReader struct {
	ch      chan bodyChunk
	pending []bodyChunk
	quit    chan struct{}
}

type bodyChunk struct {
	b   []byte
	eof bool
	err error
}

func (h *Harness) readBody(r io.Reader) *bodyReader {
	br := &bodyReader{ch: make(chan bodyChunk, 1024), quit: make(chan struct{})}
	hook := h.onUpstreamEOF
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			c := bodyChunk{b: append([]byte(nil), buf[:n]...)}
			switch {
			case errors.Is(err, io.EOF):
				c.eof = true
			case err != nil:
				c.err = err
			case n == 0:
				continue
			}
			select {
			case br.ch <- c:
			case <-br.quit:
				return
			}
			if c.eof && hook != nil {
				hook()
			}
			if c.eof || c.err != nil {
				return
			}
		}
	}()
	return br
}

func (br *bodyReader) stop() { close(br.quit) }

// completeNow drains what has arrived without waiting and reports whether
// the body ended.
func (br *bodyReader) completeNow() bool {
	for {
		select {
		case c := <-br.ch:
			br.pending = append(br.pending, c)
			if c.eof || c.err != nil {
				return c.eof
			}
		default:
			return false
		}
	}
}

// all waits for the whole body.
func (br *bodyReader) all() ([]byte, error) {
	var out []byte
	for {
		c, end, err := br.next()
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
		if end {
			return out, nil
		}
	}
}

// next returns what arrived since the last call, waiting for at least one
// read: held chunks first, merged into one.
func (br *bodyReader) next() ([]byte, bool, error) {
	if len(br.pending) > 0 {
		var out []byte
		for _, c := range br.pending {
			if c.err != nil {
				return nil, false, c.err
			}
			out = append(out, c.b...)
			if c.eof {
				br.pending = nil
				return out, true, nil
			}
		}
		br.pending = nil
		return out, false, nil
	}
	c := <-br.ch
	return c.b, c.eof, c.err
}

func (h *Harness) readError(ctx context.Context, err error) *localReply {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return newLocal(504, "upstream request timeout", "upstream_response_timeout")
	}
	return newLocal(503, "upstream connect error or disconnect/reset before headers. reset reason: remote reset", "upstream_reset_after_response_started")
}
