package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/pipeline"
)

const testConfig = `
version: weir.dev/v1alpha1
listener: {max_body_bytes: 2048}
backends:
  - name: oai
    provider: openai
    base_url: https://api.openai.example/v1
    credential: {value: sk-upstream}
    headers: {openai-organization: org-1}
  - name: ant
    provider: anthropic
    base_url: https://api.anthropic.example
    credential: {value: sk-ant}
models:
  - name: gpt-4o-mini
    aliases: [mini]
    backends: [oai]
  - name: claude
    provider_model: claude-sonnet-4-5
    backends: [ant]
  - name: openai/*
    backends: [oai]
`

// newTestClient starts the server on an in-memory listener.
func newTestClient(t *testing.T) (extprocv3.ExternalProcessorClient, *Server) {
	t.Helper()
	return newTestClientWith(t, testConfig)
}

func newTestClientWith(t *testing.T, cfg string) (extprocv3.ExternalProcessorClient, *Server) {
	t.Helper()
	s := New(Options{})
	if err := s.LoadConfig([]byte(cfg), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	return serveTest(t, s), s
}

// serveTest serves s on an in-memory listener and returns a client.
func serveTest(t *testing.T, s *Server) extprocv3.ExternalProcessorClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(8 << 20))
	extprocv3.RegisterExternalProcessorServer(gs, s)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn)
}

func openStream(t *testing.T, c extprocv3.ExternalProcessorClient, level string) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), config.FilterLevelHeader, level)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	st, err := c.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func roundTrip(t *testing.T, st extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	t.Helper()
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func attrs(kv map[string]string) map[string]*structpb.Struct {
	f := map[string]*structpb.Value{}
	for k, v := range kv {
		f[k] = structpb.NewStringValue(v)
	}
	return map[string]*structpb.Struct{attrsKey: {Fields: f}}
}

// requestHeaders is the request_headers message Envoy sends first
// (request_header_mode SEND). extra adds or replaces headers.
func requestHeaders(path string, extra map[string]string) *extprocv3.ProcessingRequest {
	h := map[string]string{":method": "POST", ":path": path, ":authority": "weir.example", ":scheme": "http",
		config.HeaderRequestID: "req-1", "content-type": "application/json"}
	for k, v := range extra {
		h[k] = v
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, k, h[k])
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
		Headers: headerMap(kv...),
	}}}
}

func requestBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
		Body: []byte(body), EndOfStream: true,
	}}}
}

// roundTripRequest plays a request's headers then, unless they were
// answered already, its body, and returns the last reply.
func roundTripRequest(t *testing.T, st extprocv3.ExternalProcessor_ProcessClient, path, body string, extra map[string]string) *extprocv3.ProcessingResponse {
	t.Helper()
	resp := roundTrip(t, st, requestHeaders(path, extra))
	if resp.GetImmediateResponse() != nil {
		return resp
	}
	if resp.GetRequestHeaders() == nil {
		t.Fatalf("request headers reply = %v", resp)
	}
	return roundTrip(t, st, requestBody(body))
}

// handleRequest is roundTripRequest on a handler, without gRPC.
func handleRequest(ctx context.Context, h handler, path, body string, extra map[string]string) *extprocv3.ProcessingResponse {
	resp, _ := h.handle(ctx, requestHeaders(path, extra))
	if resp.GetImmediateResponse() != nil {
		return resp
	}
	resp, _ = h.handle(ctx, requestBody(body))
	return resp
}

func headerMap(kv ...string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return hm
}

func mutated(hm *extprocv3.HeaderMutation) map[string]string {
	out := map[string]string{}
	for _, h := range hm.GetSetHeaders() {
		if h.GetHeader().GetValue() != "" {
			out[h.GetHeader().GetKey()] = "VALUE-NOT-RAW"
			continue
		}
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}

func TestRouterRequestErrors(t *testing.T) {
	c, _ := newTestClient(t)
	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 3000) + `"}]}`
	tests := []struct {
		name       string
		path, body string
		extra      map[string]string
		wantStatus int
		wantCode   string
	}{
		{"bad json", "/v1/chat/completions", `{"model":`, nil, 400, "invalid_json"},
		{"empty body", "/v1/chat/completions", ``, nil, 400, "invalid_json"},
		{"not an object", "/v1/chat/completions", `[1]`, nil, 400, "invalid_request"},
		{"missing model", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, nil, 400, "invalid_request"},
		{"model not a string", "/v1/chat/completions", `{"model":1,"messages":[{"role":"user","content":"hi"}]}`, nil, 400, "invalid_request"},
		{"no messages", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, nil, 400, "invalid_request"},
		{"stream not bool", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":"yes","messages":[{"role":"user","content":"hi"}]}`, nil, 400, "invalid_request"},
		{"unknown model", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, nil, 404, "model_not_found"},
		{"too large", "/v1/chat/completions", big, nil, 413, "request_too_large"},
		{"unknown path", "/v1/nope", `{}`, nil, 404, "not_found"},
		{"wrong content type", "/v1/chat/completions", `{}`, map[string]string{"content-type": "text/plain"}, 400, "invalid_request"},
		{"wrong method", "/v1/chat/completions", `{}`, map[string]string{":method": "PUT"}, 405, "method_not_allowed"},
		{"get on chat", "/v1/chat/completions", ``, map[string]string{":method": "GET"}, 405, "method_not_allowed"},
		{"post on models", "/v1/models", `{}`, nil, 405, "method_not_allowed"},
		{"get unknown path", "/v1/nope", ``, map[string]string{":method": "GET"}, 404, "not_found"},
		{"anthropic embeddings unsupported", "/v1/embeddings", `{"model":"claude","input":"x"}`, nil, 400, "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStream(t, c, config.FilterLevelRouter)
			resp := roundTripRequest(t, st, tt.path, tt.body, tt.extra)
			ir := resp.GetImmediateResponse()
			if tt.wantStatus == 0 {
				// Routed: the provider rejects it at the upstream level.
				if ir != nil {
					t.Fatalf("unexpected immediate response %d", ir.GetStatus().GetCode())
				}
				return
			}
			if ir == nil {
				t.Fatalf("want immediate response, got %v", resp)
			}
			if got := int(ir.GetStatus().GetCode()); got != tt.wantStatus {
				t.Errorf("status = %d, want %d", got, tt.wantStatus)
			}
			if !json.Valid(ir.GetBody()) {
				t.Fatalf("body not JSON: %s", ir.GetBody())
			}
			if got := gjson.GetBytes(ir.GetBody(), "error.code").Str; got != tt.wantCode {
				t.Errorf("code = %q, want %q (body %s)", got, tt.wantCode, ir.GetBody())
			}
			if h := mutated(ir.GetHeaders()); h["content-type"] != "application/json" || h["x-request-id"] != "req-1" {
				t.Errorf("headers = %v", h)
			}
		})
	}
}

// TestRequestWithoutBody: headers with end_of_stream get an answer at once;
// otherwise Envoy would route them to the catch-all.
func TestRequestWithoutBody(t *testing.T) {
	c, _ := newTestClient(t)
	for _, path := range []string{"/v1/chat/completions", "/v1/messages"} {
		st := openStream(t, c, config.FilterLevelRouter)
		req := requestHeaders(path, nil)
		req.GetRequestHeaders().EndOfStream = true
		ir := roundTrip(t, st, req).GetImmediateResponse()
		if ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), "empty body") {
			t.Errorf("%s: got %v", path, ir)
		}
	}
}

func TestRouterRoutes(t *testing.T) {
	c, _ := newTestClient(t)
	tests := []struct {
		model, wantBackend, wantUpstream string
	}{
		{"gpt-4o-mini", "oai", "gpt-4o-mini"},
		{"mini", "oai", "gpt-4o-mini"},
		{"claude", "ant", "claude-sonnet-4-5"},
		{"openai/gpt-4.1", "oai", "gpt-4.1"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			st := openStream(t, c, config.FilterLevelRouter)
			resp := roundTripRequest(t, st, "/v1/chat/completions", `{"model":"`+tt.model+`","messages":[{"role":"user","content":"hi"}]}`, nil)
			common := resp.GetRequestBody().GetResponse()
			if common == nil {
				t.Fatalf("want request body reply, got %v", resp)
			}
			if got := mutated(common.GetHeaderMutation())[config.HeaderBackend]; got != tt.wantBackend {
				t.Errorf("backend header = %q, want %q", got, tt.wantBackend)
			}
			if !common.GetClearRouteCache() {
				t.Error("clear_route_cache not set")
			}
			md := resp.GetDynamicMetadata().GetFields()[config.MetadataNamespace].GetStructValue().GetFields()
			if md[config.MetaModel].GetStringValue() != tt.wantUpstream || md[config.MetaBackend].GetStringValue() != tt.wantBackend ||
				md[config.MetaEndpoint].GetStringValue() != "chat" || md[config.MetaRequestID].GetStringValue() != "req-1" {
				t.Errorf("metadata = %v", md)
			}
		})
	}
}

func TestModelsList(t *testing.T) {
	c, _ := newTestClient(t)
	tests := []struct {
		path       string
		wantStatus int
		check      func(body []byte) bool
	}{
		{"/v1/models", 200, func(b []byte) bool {
			ids := gjson.GetBytes(b, "data.#.id").Array()
			return len(ids) == 3 && ids[0].Str == "gpt-4o-mini" && ids[1].Str == "mini" && ids[2].Str == "claude"
		}},
		{"/v1/models/claude", 200, func(b []byte) bool { return gjson.GetBytes(b, "id").Str == "claude" }},
		{"/v1/models/openai/*", 404, func(b []byte) bool { return gjson.GetBytes(b, "error.code").Str == "model_not_found" }},
		{"/v1/modelsx", 404, func(b []byte) bool { return gjson.GetBytes(b, "error.code").Str == "not_found" }},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st := openStream(t, c, config.FilterLevelRouter)
			resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
				RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(":method", "GET", ":path", tt.path), EndOfStream: true},
			}})
			ir := resp.GetImmediateResponse()
			if ir == nil || int(ir.GetStatus().GetCode()) != tt.wantStatus || !tt.check(ir.GetBody()) {
				t.Fatalf("got %v", resp)
			}
		})
	}
}

// TestRouterPreparesUpstream: the router-level body reply carries the
// request as the backend wants it (path, authority, credentials, provider
// headers, content-length with the body), so the common attempt needs no
// upstream-level message.
func TestRouterPreparesUpstream(t *testing.T) {
	c, _ := newTestClient(t)
	tests := []struct {
		name, body string
		wantBody   func(b []byte) bool // nil: body unchanged
		wantHdr    map[string]string
	}{
		{"passthrough", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, nil,
			map[string]string{":path": "/v1/chat/completions", ":authority": "api.openai.example", "authorization": "Bearer sk-upstream", "openai-organization": "org-1", config.HeaderBackend: "oai"}},
		{"model rewritten", `{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"hi"}]}`, func(b []byte) bool { return gjson.GetBytes(b, "model").Str == "gpt-4.1" },
			map[string]string{":path": "/v1/chat/completions", "authorization": "Bearer sk-upstream"}},
		{"stream asks for usage", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`, func(b []byte) bool {
			return gjson.GetBytes(b, "stream_options.include_usage").Bool()
		}, map[string]string{":path": "/v1/chat/completions"}},
		{"translated for anthropic", `{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, func(b []byte) bool {
			return gjson.GetBytes(b, "model").Str == "claude-sonnet-4-5" && gjson.GetBytes(b, "max_tokens").Int() > 0
		}, map[string]string{":path": "/v1/messages", ":authority": "api.anthropic.example", "x-api-key": "sk-ant", config.HeaderBackend: "ant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStream(t, c, config.FilterLevelRouter)
			resp := roundTripRequest(t, st, "/v1/chat/completions", tt.body, map[string]string{"authorization": "Bearer sk-client", "x-api-key": "sk-client2"})
			common := resp.GetRequestBody().GetResponse()
			if common == nil {
				t.Fatalf("want request body reply, got %v", resp)
			}
			h := mutated(common.GetHeaderMutation())
			for k, v := range tt.wantHdr {
				if h[k] != v {
					t.Errorf("%s = %q, want %q (all %v)", k, h[k], v, h)
				}
			}
			removed := strings.Join(common.GetHeaderMutation().GetRemoveHeaders(), ",")
			for _, k := range []string{"authorization", "x-api-key"} {
				if _, set := h[k]; !set && !strings.Contains(removed, k) {
					t.Errorf("client %s neither replaced nor removed (removed %s)", k, removed)
				}
				if _, set := h[k]; set && strings.Contains(removed, k) {
					t.Errorf("%s both set and removed", k)
				}
			}
			if tt.wantBody == nil {
				if common.GetBodyMutation() != nil {
					t.Errorf("body mutated: %s", common.GetBodyMutation().GetBody())
				}
				if _, ok := h["content-length"]; ok {
					t.Error("content-length set for an unchanged body")
				}
			} else {
				body := common.GetBodyMutation().GetBody()
				if !tt.wantBody(body) {
					t.Errorf("body = %s", body)
				}
				if h["content-length"] != itoa(len(body)) {
					t.Errorf("content-length = %q, want %d", h["content-length"], len(body))
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestUpstreamRetranslate covers the upstream filter, which Envoy runs only
// on an attempt whose headers were prepared for another backend: it gets
// the request headers (with the attempt's host attribute) and then the
// router's buffered body.
func TestUpstreamRetranslate(t *testing.T) {
	c2, _ := newTestClientWith(t, strings.Replace(testConfig, "backends:\n",
		"backends:\n  - {name: oai2, provider: openai, base_url: \"https://other.example/v1\", credential: {value: sk-other}}\n", 1))
	md := func(backend, headers string) *corev3.Metadata {
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{config.MetadataNamespace: stringStruct(
			config.MetaBackend, backend, config.MetaModel, "gpt-4o-mini", config.MetaEndpoint, "chat", config.MetaRequestID, "req-1",
			config.MetaClientModel, "gpt-4o-mini", config.MetaStream, "false", config.MetaHeaders, headers)}}
	}
	tests := []struct {
		name, from, target string
		wantStatus         int // 0: re-translated
	}{
		{"openai body to another openai backend", "oai", "oai2", 0},
		{"anthropic body cannot be re-translated", "ant", "oai2", 502},
		{"no host attribute", "oai", "", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStream(t, c2, config.FilterLevelUpstream)
			hreq := &extprocv3.ProcessingRequest{MetadataContext: md(tt.from, ":path,:authority,content-type,openai-organization,authorization"),
				Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(":path", "/v1/chat/completions", config.HeaderBackend, tt.from)}}}
			if tt.target != "" {
				hreq.Attributes = attrs(map[string]string{config.AttrHostBackend: tt.target})
			}
			if resp := roundTrip(t, st, hreq); resp.GetRequestHeaders() == nil {
				t.Fatalf("headers reply = %v", resp)
			}
			resp := roundTrip(t, st, &extprocv3.ProcessingRequest{MetadataContext: md(tt.from, ":path,:authority,content-type,openai-organization,authorization"),
				Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(`{"model":"gpt-4o-mini","messages":[]}`), EndOfStream: true}}})
			if tt.wantStatus != 0 {
				if ir := resp.GetImmediateResponse(); ir == nil || int(ir.GetStatus().GetCode()) != tt.wantStatus {
					t.Fatalf("want %d, got %v", tt.wantStatus, resp)
				}
				return
			}
			hm := resp.GetRequestBody().GetResponse().GetHeaderMutation()
			h := mutated(hm)
			if h[":authority"] != "other.example" || h["authorization"] != "Bearer sk-other" || h[config.HeaderBackend] != "oai2" {
				t.Errorf("headers = %v", h)
			}
			// The other backend's static header goes; the re-set ones stay.
			removed := strings.Join(hm.GetRemoveHeaders(), ",")
			if !strings.Contains(removed, "openai-organization") || strings.Contains(removed, "authorization") || strings.Contains(removed, ":path") {
				t.Errorf("removed = %s", removed)
			}
		})
	}
}

// routedStream sends a routed request for model and returns the stream.
func routedStream(t *testing.T, c extprocv3.ExternalProcessorClient, model, extraBody string) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	st := openStream(t, c, config.FilterLevelRouter)
	resp := roundTripRequest(t, st, "/v1/chat/completions", `{"model":"`+model+`",`+extraBody+`"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.GetRequestBody() == nil {
		t.Fatalf("not routed: %v", resp)
	}
	return st
}

func TestRouterResponse(t *testing.T) {
	c, s := newTestClient(t)
	_ = s
	t.Run("json passthrough keeps body", func(t *testing.T) {
		st := routedStream(t, c, "gpt-4o-mini", "")
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", "200", "content-type", "application/json", "openai-organization", "secret-org"),
		}}})
		hr := resp.GetResponseHeaders().GetResponse()
		if resp.GetModeOverride() != nil {
			t.Error("unexpected mode override")
		}
		if !strings.Contains(strings.Join(hr.GetHeaderMutation().GetRemoveHeaders(), ","), "openai-organization") {
			t.Error("provider identity header not removed")
		}
		resp = roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: []byte(`{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`), EndOfStream: true,
		}}})
		if resp.GetResponseBody().GetResponse().GetBodyMutation() != nil {
			t.Error("passthrough body mutated")
		}
	})
	t.Run("sse switches to streamed", func(t *testing.T) {
		st := routedStream(t, c, "gpt-4o-mini", `"stream":true,`)
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", "200", "content-type", "text/event-stream; charset=utf-8", "content-length", "100"),
		}}})
		mo := resp.GetModeOverride()
		if mo == nil || mo.GetResponseBodyMode() != extprocfilterv3.ProcessingMode_STREAMED {
			t.Fatalf("mode override = %v", mo)
		}
		if !strings.Contains(strings.Join(resp.GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), ","), "content-length") {
			t.Error("content-length not removed on switch to STREAMED")
		}
		// The client did not ask for usage: the usage-only chunk Weir asked
		// for is dropped, everything else passes.
		chunks := []string{
			"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"us",
			"age\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
			"data: [DONE]\n\n",
		}
		var got strings.Builder
		for i, ch := range chunks {
			resp = roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: []byte(ch), EndOfStream: i == len(chunks)-1,
			}}})
			bm := resp.GetResponseBody().GetResponse().GetBodyMutation()
			switch {
			case bm == nil:
				got.WriteString(ch)
			case bm.GetClearBody():
			default:
				got.Write(bm.GetBody())
			}
		}
		want := "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\ndata: [DONE]\n\n"
		if got.String() != want {
			t.Errorf("stream = %q, want %q", got.String(), want)
		}
	})
	t.Run("upstream error wrapped", func(t *testing.T) {
		st := routedStream(t, c, "gpt-4o-mini", "")
		roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", "502", "content-type", "text/html"),
		}}})
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: []byte(`<html>bad gateway</html>`), EndOfStream: true,
		}}})
		common := resp.GetResponseBody().GetResponse()
		body := common.GetBodyMutation().GetBody()
		if gjson.GetBytes(body, "error.type").Str != "server_error" || !strings.Contains(gjson.GetBytes(body, "error.message").Str, "bad gateway") {
			t.Errorf("body = %s", body)
		}
		if h := mutated(common.GetHeaderMutation()); h["content-length"] != itoa(len(body)) || h["content-type"] != "application/json" {
			t.Errorf("headers = %v", h)
		}
	})
	t.Run("2xx non-json becomes 502", func(t *testing.T) {
		st := routedStream(t, c, "gpt-4o-mini", "")
		roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", "200", "content-type", "application/json"),
		}}})
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: []byte(`{"truncated`), EndOfStream: true,
		}}})
		h := mutated(resp.GetResponseBody().GetResponse().GetHeaderMutation())
		if h[":status"] != "502" {
			t.Errorf("headers = %v", h)
		}
	})
}

// TestRouterEventStream: a 2xx application/vnd.amazon.eventstream response
// from a translator that declares it (Bedrock) switches to STREAMED and
// reaches the client as text/event-stream; other translators keep it
// buffered.
func TestRouterEventStream(t *testing.T) {
	cfg := testConfig[:strings.Index(testConfig, "models:")] + `  - name: brk
    provider: bedrock
    base_url: https://bedrock-runtime.us-east-1.amazonaws.com
    aws: {region: us-east-1, access_key_id: AKIDEXAMPLE, secret_access_key: secret}
models:
  - name: nova
    provider_model: amazon.nova-lite-v1:0
    backends: [brk]
  - name: gpt-4o-mini
    backends: [oai]
`
	c, _ := newTestClientWith(t, cfg)
	const ct = "application/vnd.amazon.eventstream"
	t.Run("bedrock streams", func(t *testing.T) {
		st := routedStream(t, c, "nova", `"stream":true,`)
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", "200", "content-type", ct, "content-length", "100"),
		}}})
		if mo := resp.GetModeOverride(); mo.GetResponseBodyMode() != extprocfilterv3.ProcessingMode_STREAMED {
			t.Fatalf("mode override = %v", mo)
		}
		hm := resp.GetResponseHeaders().GetResponse().GetHeaderMutation()
		if h := mutated(hm); h["content-type"] != "text/event-stream" {
			t.Errorf("content-type not rewritten: %v", h)
		}
		if !strings.Contains(strings.Join(hm.GetRemoveHeaders(), ","), "content-length") {
			t.Error("content-length not removed")
		}
		var frames bytes.Buffer
		enc := eventstream.NewEncoder()
		for _, f := range [][2]string{
			{"messageStart", `{"role":"assistant"}`},
			{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Hi"}}`},
			{"messageStop", `{"stopReason":"end_turn"}`},
			{"metadata", `{"usage":{"inputTokens":5,"outputTokens":1,"totalTokens":6}}`},
		} {
			var h eventstream.Headers
			h.Set(":message-type", eventstream.StringValue("event"))
			h.Set(":event-type", eventstream.StringValue(f[0]))
			if err := enc.Encode(&frames, eventstream.Message{Headers: h, Payload: []byte(f[1])}); err != nil {
				t.Fatal(err)
			}
		}
		raw := frames.Bytes()
		var got strings.Builder
		for i, ch := range [][]byte{raw[:len(raw)/2], raw[len(raw)/2:]} {
			resp = roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: ch, EndOfStream: i == 1,
			}}})
			got.Write(resp.GetResponseBody().GetResponse().GetBodyMutation().GetBody())
		}
		out := got.String()
		if !strings.Contains(out, `"content":"Hi"`) || !strings.Contains(out, `"finish_reason":"stop"`) || !strings.HasSuffix(out, "data: [DONE]\n\n") {
			t.Errorf("stream = %q", out)
		}
	})
	t.Run("other providers stay buffered", func(t *testing.T) {
		st := routedStream(t, c, "gpt-4o-mini", `"stream":true,`)
		resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", "200", "content-type", ct),
		}}})
		if resp.GetModeOverride() != nil {
			t.Error("unexpected mode override")
		}
	})
}

type panicStage struct{}

func (panicStage) Name() string { return "panic" }
func (panicStage) Request(_ context.Context, r *pipeline.Request) error {
	if bytes.Contains(r.Body, []byte("PANIC")) {
		panic("stage exploded")
	}
	return nil
}

// TestPanicEndsOneRequest: a panic while processing one stream answers that
// request with a 500 in the client's format; the server and other streams
// go on.
func TestPanicEndsOneRequest(t *testing.T) {
	var logs bytes.Buffer
	s := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.pipeline = pipeline.New(append([]pipeline.Stage{panicStage{}}, s.Stages()...)...)
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	c := serveTest(t, s)
	tests := []struct {
		path, body string
		wantStatus int
		wantShape  string // JSON path that must exist
	}{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"PANIC"}]}`, 500, "error.message"},
		{"/v1/messages", `{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, 0, ""},
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, 0, ""},
	}
	for _, tt := range tests {
		st := openStream(t, c, config.FilterLevelRouter)
		resp := roundTripRequest(t, st, tt.path, tt.body, nil)
		ir := resp.GetImmediateResponse()
		if tt.wantStatus == 0 {
			if resp.GetRequestBody() == nil {
				t.Errorf("%s: not routed after a panic elsewhere: %v", tt.path, resp)
			}
			continue
		}
		if ir == nil || int(ir.GetStatus().GetCode()) != tt.wantStatus || !gjson.GetBytes(ir.GetBody(), tt.wantShape).Exists() {
			t.Fatalf("%s: got %v", tt.path, resp)
		}
		if strings.Contains(string(ir.GetBody()), "exploded") {
			t.Errorf("panic detail reached the client: %s", ir.GetBody())
		}
	}
	// The Anthropic ingress answers in Anthropic's error shape.
	st := openStream(t, c, config.FilterLevelRouter)
	ir := roundTripRequest(t, st, "/v1/messages", `{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":"PANIC"}]}`, nil).GetImmediateResponse()
	if ir == nil || ir.GetStatus().GetCode() != 500 || gjson.GetBytes(ir.GetBody(), "type").Str != "error" {
		t.Fatalf("anthropic ingress panic reply = %v", ir)
	}
	if !strings.Contains(logs.String(), "stage exploded") || !strings.Contains(logs.String(), "request_id=req-1") {
		t.Errorf("panic not logged with the request id: %s", logs.String())
	}
	if got := testutil.ToFloat64(s.Metrics().PanicsCounter("router")); got != 2 {
		t.Errorf("panics metric = %v, want 2", got)
	}
}

// stringStruct builds a Struct of string fields for dynamic metadata.
func stringStruct(kv ...string) *structpb.Struct {
	f := make(map[string]*structpb.Value, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = stringValue(kv[i+1])
	}
	return &structpb.Struct{Fields: f}
}
