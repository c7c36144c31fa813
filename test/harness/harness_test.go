package harness

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

// A scripted ext_proc server: each test decides the reply to every
// message, and the server records what Envoy (the harness) sent.

type seen struct {
	level string
	req   *extprocv3.ProcessingRequest
}

// replyFunc returns the reply, or nil to never answer (timeout tests), or
// errReply to fail the stream.
type replyFunc func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse

var errReply = &extprocv3.ProcessingResponse{}

type scripted struct {
	extprocv3.UnimplementedExternalProcessorServer
	reply replyFunc
	// gate is signalled on every response body message, so an upstream
	// can send its next chunk only after the previous one went through.
	gate chan struct{}
	mu   sync.Mutex
	msgs []seen
}

func (s *scripted) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	level := strings.Join(md.Get(config.FilterLevelHeader), "")
	for n := 0; ; n++ {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, seen{level, req})
		s.mu.Unlock()
		if req.GetResponseBody() != nil && s.gate != nil {
			select {
			case s.gate <- struct{}{}:
			default:
			}
		}
		r := s.reply(level, n, req)
		if r == nil {
			<-stream.Context().Done()
			return nil
		}
		if r == errReply {
			return status.Error(codes.Internal, "scripted failure")
		}
		if err := stream.Send(r); err != nil {
			return nil
		}
	}
}

func (s *scripted) sent(level string) []*extprocv3.ProcessingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*extprocv3.ProcessingRequest
	for _, m := range s.msgs {
		if m.level == level {
			out = append(out, m.req)
		}
	}
	return out
}

func hv(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func continueFor(req *extprocv3.ProcessingRequest, cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	switch req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	}
	return nil
}

// route is the well-behaved router reply: pick backend b1 by header and
// clear the route cache.
func route(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	r := continueFor(req, &extprocv3.CommonResponse{
		HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{hv(config.HeaderBackend, "b1")}},
		ClearRouteCache: true,
	})
	r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		config.MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"from_router": structpb.NewStringValue("yes")}}),
		"not.received":           structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewStringValue("y")}}),
	}}
	return r
}

// defaults answers every message with a plain continue, routing on the
// request body.
func defaults(level string, _ int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	if level == config.FilterLevelRouter && req.GetRequestBody() != nil {
		return route(req)
	}
	return continueFor(req, nil)
}

type upstreamRec struct {
	mu    sync.Mutex
	reqs  []*http.Request
	bodys []string
	fails int // remaining 503s for /flaky
	gate  chan struct{}
}

func startUpstream(t *testing.T, rec *upstreamRec) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r)
		rec.bodys = append(rec.bodys, string(b))
		fail := false
		if strings.HasSuffix(r.URL.Path, "/flaky") && rec.fails > 0 {
			rec.fails--
			fail = true
		}
		rec.mu.Unlock()
		switch {
		case fail:
			w.WriteHeader(503)
		case strings.HasSuffix(r.URL.Path, "/sse-whole"):
			w.Header().Set("content-type", "text/event-stream")
			_, _ = w.Write([]byte("data: 0\n\ndata: 1\n\n"))
		case strings.HasSuffix(r.URL.Path, "/sse"):
			w.Header().Set("content-type", "text/event-stream")
			f := w.(http.Flusher)
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				f.Flush()
				// Wait until the chunk reached the extproc, so each one is
				// a separate read: deterministic chunking without sleeps.
				select {
				case <-rec.gate:
				case <-r.Context().Done():
					return
				}
			}
		default:
			w.Header().Set("content-type", "application/json")
			w.Header().Set("content-length", "11")
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type env struct {
	h   *Harness
	ep  *scripted
	up  *upstreamRec
	srv *httptest.Server
}

func setup(t *testing.T, reply replyFunc, mutate func(*xds.Resources), msgTimeout time.Duration) *env {
	t.Helper()
	gate := make(chan struct{}, 16)
	up := &upstreamRec{fails: 1, gate: gate}
	base := startUpstream(t, up)
	cfg, err := config.Parse([]byte(`
version: weir.dev/v1alpha1
listener: {max_body_bytes: 1024}
backends:
  - {name: b1, provider: openai, base_url: "`+base+`/v1"}
models:
  - {name: m1, backends: [b1]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ep := &scripted{reply: reply, gate: gate}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, ep)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	res, err := xds.Build(cfg, xds.Options{ExtProcAddress: lis.Addr().String(), MessageTimeout: msgTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(res)
	}
	h, err := New(res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{h: h, ep: ep, up: up, srv: srv}
}

func (e *env) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-envoy-retry-on", "5xx") // must be stripped
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestEnvoyBehaviours(t *testing.T) {
	tests := []struct {
		name       string
		reply      replyFunc
		mutate     func(*xds.Resources)
		timeout    time.Duration
		path, body string
		hdr        map[string]string
		wantStatus int
		wantBody   string
		check      func(t *testing.T, e *env, resp *http.Response, body string)
	}{
		{
			name:  "header mutation plus clear_route_cache picks the backend route",
			reply: defaults, path: "/v1/chat/completions", body: `{"model":"m1"}`,
			wantStatus: 200, wantBody: `{"ok":true}`,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				st := e.h.Stats()
				// The upstream ext_proc is skipped: x-weir-backend names the
				// attempt's backend (match_delegate).
				if st["router.clear_route_cache"] != 1 || st["upstream.streams"] != 0 || st["upstream.match_delegate_skipped"] != 1 {
					t.Errorf("stats = %v", st)
				}
				r := e.up.reqs[0]
				if r.Header.Get("x-envoy-retry-on") != "" {
					t.Error("client x-envoy-* header reached upstream")
				}
				if r.Header.Get("x-request-id") == "" || r.Header.Get(config.HeaderBackend) != "b1" {
					t.Errorf("upstream headers = %v", r.Header)
				}
			},
		},
		{
			name: "clear_route_cache without a header mutation is ignored",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil && level == config.FilterLevelRouter {
					return continueFor(req, &extprocv3.CommonResponse{ClearRouteCache: true})
				}
				return continueFor(req, nil)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 404,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				if e.h.Stats()["router.clear_route_cache_ignored"] != 1 || len(e.up.reqs) != 0 {
					t.Errorf("stats = %v, upstream calls %d", e.h.Stats(), len(e.up.reqs))
				}
			},
		},
		{
			name: "header set without clear_route_cache keeps the cached route",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil && level == config.FilterLevelRouter {
					return continueFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{hv(config.HeaderBackend, "b1")}}})
				}
				return continueFor(req, nil)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 404,
		},
		{
			name: "a mutation with only value writes an empty header",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil && level == config.FilterLevelRouter {
					return continueFor(req, &extprocv3.CommonResponse{ClearRouteCache: true, HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
						{Header: &corev3.HeaderValue{Key: config.HeaderBackend, Value: "b1"}},
					}}})
				}
				return continueFor(req, nil)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 404,
		},
		{
			name: "a mutation with value and raw_value is an error",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil && level == config.FilterLevelRouter {
					return continueFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
						{Header: &corev3.HeaderValue{Key: "x-a", Value: "1", RawValue: []byte("1")}},
					}}})
				}
				return continueFor(req, nil)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 500,
		},
		{
			name: "immediate response: status below 200 becomes 200, upstream untouched",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
					Status:  &typev3.HttpStatus{Code: 0},
					Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{hv("content-type", "application/json")}},
					Body:    []byte(`{"hello":1}`),
				}}}
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200, wantBody: `{"hello":1}`,
			check: func(t *testing.T, e *env, resp *http.Response, _ string) {
				if len(e.up.reqs) != 0 || resp.Header.Get("content-type") != "application/json" {
					t.Errorf("upstream calls %d, content-type %q", len(e.up.reqs), resp.Header.Get("content-type"))
				}
			},
		},
		{
			name: "immediate 413 is rewritten by the local reply mapper",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
					Status: &typev3.HttpStatus{Code: 413}, Body: []byte("x"),
				}}}
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 413, wantBody: xds.BodyTooLarge,
		},
		{
			// W7: Envoy's own 413 (the BUFFERED filter over the buffer
			// limit) is sent through the filter chain, so the ext_proc
			// filter sees it as a response (filter_manager.cc
			// sendLocalReply -> sendLocalReplyViaFilterChain; ext_proc.cc
			// encodeHeaders).
			name:  "body over the buffer limit is a 413 that goes through the ext_proc response path",
			reply: defaults, path: "/v1/chat/completions", body: strings.Repeat("x", 1024+1<<20+1),
			wantStatus: 413, wantBody: xds.BodyTooLarge,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				r := e.ep.sent(config.FilterLevelRouter)
				if len(r) != 3 || r[0].GetRequestHeaders() == nil || r[1].GetResponseHeaders() == nil || r[2].GetResponseBody() == nil {
					t.Fatalf("router messages = %v", r)
				}
				if st := headerOf(r[1].GetResponseHeaders().GetHeaders(), ":status"); st != "413" {
					t.Errorf("response headers status = %q", st)
				}
				if string(r[2].GetResponseBody().GetBody()) != xds.BodyTooLarge {
					t.Errorf("the extproc must see the mapped body, got %s", r[2].GetResponseBody().GetBody())
				}
			},
		},
		{
			name: "spurious reply fails closed",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 500,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				if e.h.Stats()["router.spurious_msgs_received"] != 1 {
					t.Errorf("stats = %v", e.h.Stats())
				}
			},
		},
		{
			name:  "gRPC error is a 500",
			reply: func(string, int, *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return errReply },
			path:  "/v1/chat/completions", body: `{}`, wantStatus: 500,
		},
		{
			name:    "no reply within message_timeout is a 504",
			reply:   func(string, int, *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return nil },
			timeout: time.Millisecond,
			path:    "/v1/chat/completions", body: `{}`, wantStatus: 504,
		},
		{
			name:  "first message carries protocol_config and request attributes; metadata reaches upstream",
			reply: defaults, path: "/v1/chat/completions?x=1", body: `{"a":1}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				r := e.ep.sent(config.FilterLevelRouter)
				if len(r) != 4 || r[0].GetRequestHeaders() == nil || r[1].GetRequestBody() == nil || r[2].GetResponseHeaders() == nil || r[3].GetResponseBody() == nil {
					t.Fatalf("router messages = %v", r)
				}
				if r[0].GetProtocolConfig() == nil || r[1].GetProtocolConfig() != nil {
					t.Error("protocol_config must ride only on the first message")
				}
				hm := r[0].GetRequestHeaders().GetHeaders()
				if headerOf(hm, ":path") != "/v1/chat/completions?x=1" || headerOf(hm, ":method") != "POST" || headerOf(hm, "x-request-id") == "" || r[0].GetRequestHeaders().GetEndOfStream() {
					t.Errorf("request headers = %v", hm)
				}
				if r[0].GetAttributes() != nil {
					t.Errorf("no request attributes are configured, got %v", r[0].GetAttributes())
				}
				ra := r[2].GetAttributes()[filterExtProc].GetFields()
				if ra[config.AttrHostBackend].GetStringValue() != "b1" || r[3].GetAttributes() != nil {
					t.Errorf("response attributes = %v / %v", ra, r[3].GetAttributes())
				}
				if u := e.ep.sent(config.FilterLevelUpstream); len(u) != 0 {
					t.Fatalf("upstream messages = %v; the upstream filter is skipped for the prepared backend", u)
				}
			},
		},
		{
			name: "mode_override to STREAMED sends each chunk, the last with end_of_stream",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseHeaders() != nil {
					r := continueFor(req, nil)
					r.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
					return r
				}
				if b := req.GetResponseBody(); b != nil {
					return continueFor(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(strings.ToUpper(string(b.GetBody())))}}})
				}
				return defaults(level, n, req)
			},
			path: "/v1/sse", body: `{}`, wantStatus: 200, wantBody: "DATA: 0\n\nDATA: 1\n\nDATA: 2\n\n",
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				var bodies []*extprocv3.HttpBody
				for _, r := range e.ep.sent(config.FilterLevelRouter) {
					if b := r.GetResponseBody(); b != nil {
						bodies = append(bodies, b)
					}
				}
				// Three data chunks, then the empty end_of_stream chunk
				// when the upstream's chunked body ends.
				if len(bodies) != 4 || !bodies[3].GetEndOfStream() || len(bodies[3].GetBody()) != 0 {
					t.Fatalf("streamed chunks = %v", bodies)
				}
				for _, b := range bodies[:len(bodies)-1] {
					if b.GetEndOfStream() {
						t.Error("only the last chunk ends the stream")
					}
				}
			},
		},
		{
			name: "mode_override in a body reply is ignored",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				r := defaults(level, n, req)
				if req.GetRequestBody() != nil && level == config.FilterLevelRouter {
					r.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE}
				}
				return r
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				if n := len(e.ep.sent(config.FilterLevelRouter)); n != 4 || e.h.Stats()["router.mode_override_ignored"] != 1 {
					t.Errorf("messages %d, stats %v", n, e.h.Stats())
				}
			},
		},
		{
			name: "buffered body mutation with a stale content-length is an error",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseBody() != nil {
					return continueFor(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("longer than eleven")}}})
				}
				return defaults(level, n, req)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 500,
		},
		{
			name: "buffered body mutation that fixes content-length goes through",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseBody() != nil {
					return continueFor(req, &extprocv3.CommonResponse{
						HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{hv("content-length", "18")}},
						BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("longer than eleven")}},
					})
				}
				return defaults(level, n, req)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200, wantBody: "longer than eleven",
		},
		{
			name: "an engaged upstream filter holds the headers: path, authority, content-length and body mutations apply",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if level == config.FilterLevelUpstream && req.GetRequestBody() != nil {
					return continueFor(req, &extprocv3.CommonResponse{
						HeaderMutation: &extprocv3.HeaderMutation{
							SetHeaders:    []*corev3.HeaderValueOption{hv(":path", "/v1/rewritten"), hv(":authority", "provider.example"), hv("x-envoy-nope", "1"), hv("content-length", "19")},
							RemoveHeaders: []string{"x-client"},
						},
						BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"translated":true}`)}},
					})
				}
				return defaults(level, n, req)
			},
			mutate: engageUpstream,
			path:   "/v1/chat/completions", body: `{"a":"client"}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				r := e.up.reqs[0]
				if r.URL.Path != "/v1/rewritten" || r.Host != "provider.example" || e.up.bodys[0] != `{"translated":true}` || r.ContentLength != 19 {
					t.Errorf("upstream saw %s host %s body %s cl %d", r.URL.Path, r.Host, e.up.bodys[0], r.ContentLength)
				}
				if r.Header.Get("x-envoy-nope") != "" {
					t.Errorf("upstream headers = %v", r.Header)
				}
				u := e.ep.sent(config.FilterLevelUpstream)
				if len(u) != 2 || u[0].GetRequestHeaders() == nil || u[1].GetRequestBody() == nil {
					t.Fatalf("upstream messages = %v", u)
				}
				if u[0].GetAttributes()[filterExtProc].GetFields()[config.AttrHostBackend].GetStringValue() != "b1" {
					t.Error("upstream attempt must see its host's backend on its first message")
				}
				md := u[1].GetMetadataContext().GetFilterMetadata()
				if md[config.MetadataNamespace].GetFields()["from_router"].GetStringValue() != "yes" || md["not.received"] != nil {
					t.Errorf("upstream metadata = %v", md)
				}
				if e.h.Stats()["upstream.rejected_header_mutations"] != 1 {
					t.Errorf("stats = %v", e.h.Stats())
				}
			},
		},
		{
			// W1-W3: with request headers SKIP the router gets the headers
			// before the body goes out, routes on the client's headers (the
			// catch-all) and answers 404 from its decodeHeaders; the local
			// reply aborts the decoder chain, so the body never reaches the
			// extproc, which sees only the 404 response.
			name:  "request headers SKIP cannot route by body",
			reply: defaults, mutate: routerHeaderMode(extprocfilterv3.ProcessingMode_SKIP),
			path: "/v1/chat/completions", body: `{"model":"m1"}`, wantStatus: 404,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				r := e.ep.sent(config.FilterLevelRouter)
				if len(r) != 2 || r[0].GetResponseHeaders() == nil || r[1].GetResponseBody() == nil {
					t.Fatalf("router messages = %v; want only the 404 response", r)
				}
				if len(e.up.reqs) != 0 {
					t.Error("reached the upstream")
				}
			},
		},
		{
			// W5: the HCM caches the route from the client's headers before
			// any HTTP filter; without the early header mutation a client's
			// x-weir-backend picks the cluster even if the extproc never
			// routes.
			name: "without the early strip a client picks the cluster",
			reply: func(_ string, _ int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return continueFor(req, nil)
			},
			mutate: func(res *xds.Resources) {
				hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
				hcm.EarlyHeaderMutationExtensions = nil
				repackHCM(res, hcm)
			},
			hdr:  map[string]string{config.HeaderBackend: "b1"},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200,
		},
		{
			name: "with the early strip a client cannot pick the cluster",
			reply: func(_ string, _ int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return continueFor(req, nil)
			},
			hdr:  map[string]string{config.HeaderBackend: "b1", "x-weir-other": "1"},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 404,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				hm := e.ep.sent(config.FilterLevelRouter)[0].GetRequestHeaders().GetHeaders()
				if headerOf(hm, config.HeaderBackend) != "" || headerOf(hm, "x-weir-other") != "" {
					t.Errorf("client x-weir-* headers reached the extproc: %v", hm)
				}
			},
		},
		{
			name: "upper-case header names in set_headers are legal and lower-cased",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				r := defaults(level, n, req)
				if level == config.FilterLevelRouter && req.GetRequestBody() != nil {
					r.GetRequestBody().Response.HeaderMutation.SetHeaders = append(r.GetRequestBody().Response.HeaderMutation.SetHeaders, hv("X-Upper-Case", "1"))
				}
				return r
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				if e.up.reqs[0].Header.Get("x-upper-case") != "1" {
					t.Errorf("upstream headers = %v", e.up.reqs[0].Header)
				}
			},
		},
		{
			// W9: header modes a mode_override leaves DEFAULT come from the
			// filter-level config (SEND), not from the per-route override
			// (SKIP) in force before it.
			name: "mode_override starts from the filter-level mode",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				r := defaults(level, n, req)
				if req.GetRequestHeaders() != nil {
					r.ModeOverride = &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}
				}
				return r
			},
			mutate: perRouteCatchAll(&extprocfilterv3.ProcessingMode{
				RequestHeaderMode: extprocfilterv3.ProcessingMode_SEND, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
				ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP, ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE,
			}),
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				if e.h.Stats()["router.msgs.response_headers"] != 1 {
					t.Errorf("response headers not sent after the override: %v", e.h.Stats())
				}
			},
		},
		{
			// W12: any body_mutation with the headers held is checked
			// against content-length, here an unset oneof (size 0).
			name: "an empty body_mutation is checked against content-length",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseBody() != nil {
					return continueFor(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{}})
				}
				return defaults(level, n, req)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 500,
		},
		{
			// W2, W4: the previous upstream chain (ext_proc with headers
			// SKIP and a BUFFERED body, then header_mutation restoring
			// content-length from metadata the body reply writes). The
			// codec encodes the headers before the body reply: :path is
			// not rewritten and content-length is never restored, so the
			// body goes out chunked.
			name: "upstream headers SKIP: the body reply's header mutations and metadata come too late",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if level == config.FilterLevelUpstream && req.GetRequestBody() != nil {
					r := continueFor(req, &extprocv3.CommonResponse{
						HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{hv(":path", "/v1/rewritten")}},
						BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"translated":true}`)}},
					})
					r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{config.MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
						"content_length": structpb.NewStringValue("19"),
					}})}}
					return r
				}
				return defaults(level, n, req)
			},
			mutate: legacyUpstreamChain,
			path:   "/v1/chat/completions", body: `{"a":"client"}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				r := e.up.reqs[0]
				if r.URL.Path != "/v1/chat/completions" || e.up.bodys[0] != `{"translated":true}` {
					t.Errorf("upstream saw %s body %s", r.URL.Path, e.up.bodys[0])
				}
				if r.ContentLength != -1 || len(r.TransferEncoding) == 0 {
					t.Errorf("content-length %d, transfer-encoding %v: want chunked", r.ContentLength, r.TransferEncoding)
				}
				if e.h.Stats()["upstream.header_mutations_dropped_headers_not_held"] != 1 {
					t.Errorf("stats = %v", e.h.Stats())
				}
			},
		},
		{
			// W13: clear_route_cache in the response direction is a no-op
			// that counts nothing (EncodingProcessorState keeps the base
			// clearRouteCache).
			name: "clear_route_cache on a response reply counts nothing",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseHeaders() != nil {
					return continueFor(req, &extprocv3.CommonResponse{ClearRouteCache: true, HeaderMutation: &extprocv3.HeaderMutation{}})
				}
				return defaults(level, n, req)
			},
			path: "/v1/chat/completions", body: `{}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				st := e.h.Stats()
				if st["router.clear_route_cache"] != 1 || st["router.clear_route_cache_ignored"] != 0 {
					t.Errorf("stats = %v", st)
				}
			},
		},
		{
			// W6: attempts share the router's header map; what the upstream
			// filter set for attempt 1 is there for attempt 2.
			name: "retry attempts share one header map",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if level == config.FilterLevelUpstream && req.GetRequestBody() != nil {
					return continueFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
						SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-attempt", RawValue: []byte("seen")}, Append: wrapperspb.Bool(true)}},
					}})
				}
				return defaults(level, n, req)
			},
			mutate: func(res *xds.Resources) { engageUpstream(res); addRetryInline(res) },
			path:   "/v1/flaky", body: `{}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				if len(e.up.reqs) != 2 {
					t.Fatalf("upstream calls %d", len(e.up.reqs))
				}
				if got := e.up.reqs[1].Header.Values("x-attempt"); len(got) != 2 {
					t.Errorf("second attempt x-attempt = %q, want the first attempt's value kept plus its own", got)
				}
				u := e.ep.sent(config.FilterLevelUpstream)
				if len(u) != 4 || headerOf(u[2].GetRequestHeaders().GetHeaders(), "x-attempt") != "seen" {
					t.Errorf("second attempt's request headers = %v", u)
				}
			},
		},
		{
			name:  "retries open a new upstream stream per attempt; the router sees only the last response",
			reply: defaults, mutate: func(res *xds.Resources) {
				// The listener embeds its route config; edit it in place.
				addRetryInline(res)
			},
			path: "/v1/flaky", body: `{}`, wantStatus: 200,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				st := e.h.Stats()
				if st["upstream.match_delegate_skipped"] != 2 || st["upstream_rq_retry"] != 1 || len(e.up.reqs) != 2 {
					t.Errorf("stats = %v, upstream calls %d", st, len(e.up.reqs))
				}
				var statuses []string
				for _, r := range e.ep.sent(config.FilterLevelRouter) {
					if h := r.GetResponseHeaders(); h != nil {
						for _, x := range h.GetHeaders().GetHeaders() {
							if x.GetKey() == ":status" {
								statuses = append(statuses, string(x.GetRawValue()))
							}
						}
					}
				}
				if strings.Join(statuses, ",") != "200" {
					t.Errorf("router saw statuses %v", statuses)
				}
			},
		},
		{
			name: "an upstream-level immediate response comes back through the router filter, not retried",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if level == config.FilterLevelUpstream {
					return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
						Status: &typev3.HttpStatus{Code: 503}, Body: []byte(`{"error":{}}`),
					}}}
				}
				return defaults(level, n, req)
			},
			mutate: func(res *xds.Resources) { engageUpstream(res); addRetryInline(res) },
			path:   "/v1/chat/completions", body: `{}`, wantStatus: 503, wantBody: `{"error":{}}`,
			check: func(t *testing.T, e *env, _ *http.Response, _ string) {
				st := e.h.Stats()
				if st["upstream.streams"] != 1 || len(e.up.reqs) != 0 || st["router.msgs.response_headers"] != 1 {
					t.Errorf("stats = %v", st)
				}
			},
		},
		{
			name: "models route: request headers only, answered immediately",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if h := req.GetRequestHeaders(); h != nil {
					if !h.GetEndOfStream() {
						return errReply
					}
					return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
						Status: &typev3.HttpStatus{Code: 200}, Body: []byte(`{"data":[]}`),
					}}}
				}
				return errReply
			},
			path: "/v1/models", wantStatus: 200, wantBody: `{"data":[]}`,
		},
		{
			name: "the catch-all's direct response goes through the ext_proc response path",
			reply: func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return continueFor(req, nil)
			},
			path: "/v1/models", wantStatus: 404,
			check: func(t *testing.T, e *env, resp *http.Response, body string) {
				if resp.Header.Get("content-type") != "application/json" || !strings.Contains(body, "no route") {
					t.Errorf("direct response %q %s", resp.Header.Get("content-type"), body)
				}
				r := e.ep.sent(config.FilterLevelRouter)
				if len(r) != 3 || !r[0].GetRequestHeaders().GetEndOfStream() || r[1].GetResponseHeaders() == nil {
					t.Errorf("router messages = %v", r)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			e := setup(t, tt.reply, tt.mutate, timeout)
			method := "POST"
			if tt.body == "" {
				method = "GET"
			}
			resp, body := e.do(t, method, tt.path, tt.body, tt.hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			if cl := resp.Header.Get("content-length"); cl != "" && cl != strconv.Itoa(len(body)) {
				t.Errorf("content-length %s for %d bytes", cl, len(body))
			}
			if tt.check != nil {
				tt.check(t, e, resp, body)
			}
		})
	}
}

// addRetryInline adds a retry policy to every backend route of the
// listener's inline route config.
func addRetryInline(res *xds.Resources) {
	hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
	for _, rt := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		if a := rt.GetRoute(); a != nil {
			a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2)}
		}
	}
	repackHCM(res, hcm)
}

func mustHCM(a *anypb.Any) *hcmv3.HttpConnectionManager {
	hcm := &hcmv3.HttpConnectionManager{}
	if err := a.UnmarshalTo(hcm); err != nil {
		panic(err)
	}
	return hcm
}

func repackHCM(res *xds.Resources, hcm *hcmv3.HttpConnectionManager) {
	a, err := anypb.New(hcm)
	if err != nil {
		panic(err)
	}
	res.Listeners[0].GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
}

func repackFilter(f *hcmv3.HttpFilter, m proto.Message) {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}
}

func TestNewRefusesUnemulatedConfig(t *testing.T) {
	cfg, err := config.Parse([]byte("version: weir.dev/v1alpha1\nbackends:\n  - {name: b1, provider: openai, base_url: \"http://127.0.0.1:1/v1\"}\nmodels:\n  - {name: m1, backends: [b1]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*xds.Resources)
	}{
		{"unknown attribute", func(res *xds.Resources) {
			hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
			for _, f := range hcm.GetHttpFilters() {
				if f.GetName() == xds.FilterExtProc {
					ep := &extprocfilterv3.ExternalProcessor{}
					_ = f.GetTypedConfig().UnmarshalTo(ep)
					ep.RequestAttributes = append(ep.RequestAttributes, "connection.mtls")
					repackFilter(f, ep)
				}
			}
			repackHCM(res, hcm)
		}},
		{"full duplex body mode", func(res *xds.Resources) {
			hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
			for _, f := range hcm.GetHttpFilters() {
				if f.GetName() == xds.FilterExtProc {
					ep := &extprocfilterv3.ExternalProcessor{}
					_ = f.GetTypedConfig().UnmarshalTo(ep)
					ep.ProcessingMode.ResponseBodyMode = extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED
					repackFilter(f, ep)
				}
			}
			repackHCM(res, hcm)
		}},
		{"regex route", func(res *xds.Resources) {
			hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
			hcm.GetRouteConfig().GetVirtualHosts()[0].Routes[0].Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{}
			repackHCM(res, hcm)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := xds.Build(cfg, xds.Options{ExtProcAddress: "127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			if h, err := New(res, Options{}); err != nil {
				t.Fatal("unmodified config must load:", err)
			} else {
				h.Close()
			}
			tt.mutate(res)
			if h, err := New(res, Options{}); err == nil {
				h.Close()
				t.Fatal("New accepted a config outside the emulated subset")
			}
		})
	}
}

func headerOf(hm *corev3.HeaderMap, k string) string {
	for _, h := range hm.GetHeaders() {
		if h.GetKey() == k {
			return string(h.GetRawValue())
		}
	}
	return ""
}

// engageUpstream makes every cluster's match_delegate look for a backend
// name no request carries, so the upstream ext_proc runs on every attempt.
func engageUpstream(res *xds.Resources) {
	for _, c := range res.Clusters {
		a := c.GetTypedExtensionProtocolOptions()[xds.HTTPProtocolOptionsKey]
		if a == nil {
			continue
		}
		po := &upstreamhttpv3.HttpProtocolOptions{}
		if err := a.UnmarshalTo(po); err != nil {
			panic(err)
		}
		for _, f := range po.GetHttpFilters() {
			m := &matchingv3.ExtensionWithMatcher{}
			if f.GetTypedConfig().UnmarshalTo(m) != nil {
				continue
			}
			for _, fm := range m.GetXdsMatcher().GetMatcherList().GetMatchers() {
				fm.GetPredicate().GetSinglePredicate().GetValueMatch().MatchPattern = &xdsmatcherv3.StringMatcher_Exact{Exact: "no-such-backend"}
			}
			repackFilter(f, m)
		}
		na, err := anypb.New(po)
		if err != nil {
			panic(err)
		}
		c.TypedExtensionProtocolOptions[xds.HTTPProtocolOptionsKey] = na
	}
}

// routerHeaderMode sets the router-level ext_proc's request_header_mode.
func routerHeaderMode(m extprocfilterv3.ProcessingMode_HeaderSendMode) func(*xds.Resources) {
	return func(res *xds.Resources) {
		hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
		for _, f := range hcm.GetHttpFilters() {
			if f.GetName() == xds.FilterExtProc {
				ep := &extprocfilterv3.ExternalProcessor{}
				_ = f.GetTypedConfig().UnmarshalTo(ep)
				ep.ProcessingMode.RequestHeaderMode = m
				repackFilter(f, ep)
			}
		}
		repackHCM(res, hcm)
	}
}

// perRouteCatchAll gives the catch-all route, the route cached when the
// router-level filter starts, a per-route processing mode.
func perRouteCatchAll(pm *extprocfilterv3.ProcessingMode) func(*xds.Resources) {
	return func(res *xds.Resources) {
		hcm := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
		routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
		a, err := anypb.New(&extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Overrides{Overrides: &extprocfilterv3.ExtProcOverrides{ProcessingMode: pm}}})
		if err != nil {
			panic(err)
		}
		routes[len(routes)-1].TypedPerFilterConfig = map[string]*anypb.Any{xds.FilterExtProc: a}
		repackHCM(res, hcm)
	}
}

// TestWholeBodyBeforeHeadersReply (W11): when the whole response body has
// arrived before the response-headers reply, Envoy sends it as one
// buffered message with end_of_stream while still holding the headers,
// even after a mode_override to STREAMED, so that reply's header mutations
// apply (processor_state.cc handleHeadersResponse, complete_body_available_
// -> sendBodyChunk(BufferedBodyCallback)).
func TestWholeBodyBeforeHeadersReply(t *testing.T) {
	arrived := make(chan struct{})
	var once sync.Once
	reply := func(level string, n int, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch {
		case req.GetResponseHeaders() != nil:
			<-arrived
			r := continueFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}})
			r.ModeOverride = &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
			return r
		case req.GetResponseBody() != nil:
			return continueFor(req, &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{hv("x-from-body-reply", "1")}},
				BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(strings.ToUpper(string(req.GetResponseBody().GetBody())))}},
			})
		}
		return defaults(level, n, req)
	}
	e := setup(t, reply, nil, 10*time.Second)
	e.h.onUpstreamEOF = func() { once.Do(func() { close(arrived) }) }
	resp, body := e.do(t, "POST", "/v1/sse-whole", `{}`, nil)
	if resp.StatusCode != 200 || body != "DATA: 0\n\nDATA: 1\n\n" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.Header.Get("x-from-body-reply") != "1" {
		t.Error("the body reply's header mutation must apply: the headers are still held")
	}
	var bodies []*extprocv3.HttpBody
	for _, r := range e.ep.sent(config.FilterLevelRouter) {
		if b := r.GetResponseBody(); b != nil {
			bodies = append(bodies, b)
		}
	}
	if len(bodies) != 1 || !bodies[0].GetEndOfStream() || string(bodies[0].GetBody()) != "data: 0\n\ndata: 1\n\n" {
		t.Errorf("response body messages = %v", bodies)
	}
}

// TestEmptyChunkedBody (W15): a request whose headers did not end the
// stream but whose body is empty (HTTP/1 chunked, zero length) still sends
// a BUFFERED request_body message, empty, with end_of_stream
// (ext_proc.cc onData on decodeData(end_stream=true)).
func TestEmptyChunkedBody(t *testing.T) {
	e := setup(t, defaults, nil, 10*time.Second)
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := e.ep.sent(config.FilterLevelRouter)
	if len(r) < 2 || r[0].GetRequestHeaders().GetEndOfStream() || r[1].GetRequestBody() == nil || len(r[1].GetRequestBody().GetBody()) != 0 || !r[1].GetRequestBody().GetEndOfStream() {
		t.Fatalf("router messages = %v", r)
	}
}

// legacyUpstreamChain gives cluster b1 the upstream chain Weir generated
// before the SEND shape: ext_proc (headers SKIP, body BUFFERED, receiving
// weir.dev), header_mutation setting content-length from that metadata,
// then the codec.
func legacyUpstreamChain(res *xds.Resources) {
	ns := &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{config.MetadataNamespace}}
	ep := &extprocfilterv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: xds.ExtProcCluster}},
			InitialMetadata: []*corev3.HeaderValue{{Key: config.FilterLevelHeader, Value: config.FilterLevelUpstream}},
		},
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP, ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE,
			RequestTrailerMode: extprocfilterv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		MessageTimeout:  durationpb.New(10 * time.Second),
		MetadataOptions: &extprocfilterv3.MetadataOptions{ForwardingNamespaces: ns, ReceivingNamespaces: ns},
		MutationRules:   &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
	}
	hm := &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{RequestMutations: []*mutationrulesv3.HeaderMutation{{
		Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: "content-length", Value: "%DYNAMIC_METADATA(" + config.MetadataNamespace + ":content_length)%"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}}}}
	var filters []*hcmv3.HttpFilter
	for _, f := range []struct {
		name string
		m    proto.Message
	}{{xds.FilterExtProc, ep}, {"envoy.filters.http.header_mutation", hm}, {xds.FilterUpstreamCodec, &upstreamcodecv3.UpstreamCodec{}}} {
		hf := &hcmv3.HttpFilter{Name: f.name}
		repackFilter(hf, f.m)
		filters = append(filters, hf)
	}
	for _, c := range res.Clusters {
		if c.GetName() != config.ClusterName("b1") {
			continue
		}
		po := &upstreamhttpv3.HttpProtocolOptions{}
		if err := c.GetTypedExtensionProtocolOptions()[xds.HTTPProtocolOptionsKey].UnmarshalTo(po); err != nil {
			panic(err)
		}
		po.HttpFilters = filters
		a, err := anypb.New(po)
		if err != nil {
			panic(err)
		}
		c.TypedExtensionProtocolOptions[xds.HTTPProtocolOptionsKey] = a
	}
}
