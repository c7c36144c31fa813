package extproc

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/weir-ai/weir/extproc/vkey"
)

// benchChat is a realistic ~1.5 KB chat request.
var benchChat = `{"model":"MODEL","temperature":0.2,"max_tokens":512,"messages":[` +
	`{"role":"system","content":"You are a careful assistant for a platform team. Answer briefly and cite sources."},` +
	`{"role":"user","content":"` + strings.Repeat("How do I configure retries in Envoy? ", 12) + `"},` +
	`{"role":"assistant","content":"` + strings.Repeat("Use a retry_policy on the route. ", 12) + `"},` +
	`{"role":"user","content":"` + strings.Repeat("And what about per-try timeouts? ", 10) + `"}]}`

var benchResponses = map[string]string{
	"gpt-4o-mini": `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("Set per_try_timeout on the retry policy. ", 8) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":310,"completion_tokens":64,"total_tokens":374}}`,
	"claude":      `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"` + strings.Repeat("Set per_try_timeout on the retry policy. ", 8) + `"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":310,"output_tokens":64,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}`,
}

// BenchmarkRequestFlow runs one request's four router-level ext_proc
// messages in-process (no gRPC), the extproc's own work per request. The
// upstream filter is skipped in the common case (extproc/DESIGN.md).
func BenchmarkRequestFlow(b *testing.B) {
	s := New(Options{})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		b.Fatal(err)
	}
	// sdk is what the OpenAI Python SDK sends and api.openai.com answers
	// with: every header goes through the allow-lists.
	sdkReq := map[string]string{"content-length": "1500", "user-agent": "OpenAI/Python 1.99.0", "accept": "application/json",
		"accept-encoding": "gzip, deflate", "authorization": "Bearer sk-client", "x-stainless-lang": "python", "x-stainless-package-version": "1.99.0",
		"x-stainless-os": "Linux", "x-stainless-arch": "x64", "x-stainless-runtime": "CPython", "x-stainless-runtime-version": "3.12.3",
		"x-stainless-async": "false", "x-stainless-retry-count": "0", "x-stainless-read-timeout": "600", "x-forwarded-for": "10.0.0.1", "x-forwarded-proto": "https"}
	sdkResp := []string{":status", "200", "content-type", "application/json", "content-length", "600", "date", "Sun, 06 Dec 2026 10:00:00 GMT",
		"access-control-expose-headers", "X-Request-ID", "openai-organization", "org-x", "openai-processing-ms", "412", "openai-version", "2020-10-01",
		"x-ratelimit-limit-requests", "10000", "x-ratelimit-limit-tokens", "2000000", "x-ratelimit-remaining-requests", "9999",
		"x-ratelimit-remaining-tokens", "1999000", "x-ratelimit-reset-requests", "6ms", "x-ratelimit-reset-tokens", "30ms",
		"x-request-id", "req_abc", "strict-transport-security", "max-age=31536000", "cf-cache-status", "DYNAMIC", "set-cookie", "__cf_bm=x",
		"x-content-type-options", "nosniff", "server", "cloudflare", "cf-ray", "8f1-SJC", "alt-svc", "h3=\":443\"", "x-envoy-upstream-service-time", "420"}
	for _, model := range []string{"gpt-4o-mini", "claude"} {
		for _, hs := range []struct {
			name string
			req  map[string]string
			resp []string
		}{
			{"minimal", map[string]string{"content-length": "1500", "user-agent": "OpenAI/Python 1.99.0"}, []string{":status", "200", "content-type", "application/json", "content-length", "600"}},
			{"sdk", sdkReq, sdkResp},
		} {
			b.Run(model+"/"+hs.name, func(b *testing.B) {
				benchFlow(b, s, model, hs.req, hs.resp)
			})
		}
	}
}

// benchFlow is one request's four messages, with the given request and
// response headers.
func benchFlow(b *testing.B, s *Server, model string, reqHdr map[string]string, respHdr []string) {
	ctx := context.Background()
	reqHeaders := requestHeaders("/v1/chat/completions", reqHdr)
	reqBody := requestBody(strings.Replace(benchChat, "MODEL", model, 1))
	respHeaders := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: headerMap(respHdr...),
	}}}
	respBody := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
		Body: []byte(benchResponses[model]), EndOfStream: true,
	}}}
	b.ReportAllocs()
	for b.Loop() {
		r := &routerStream{s: s, rt: s.Runtime()}
		r.handle(ctx, reqHeaders)
		if resp, _ := r.handle(ctx, reqBody); resp.GetRequestBody() == nil {
			b.Fatal("not routed")
		}
		r.handle(ctx, respHeaders)
		out, _ := r.handle(ctx, respBody)
		if out.GetResponseBody() == nil {
			b.Fatal("no response body reply")
		}
		r.finish(ctx)
	}
}

// BenchmarkRefusedAtLimit: a key at its RPM limit sends a 33 KB chat body
// (about 7,200 tokens) to a model with a 10,000-token context window, so
// only BPE could tell whether it fits. The refusal costs no tokenizing
// (TestContextWindowAfterLimits).
func BenchmarkRefusedAtLimit(b *testing.B) {
	k, err := vkey.Generate()
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err := s.LoadConfig([]byte(refusalBackends+`
  - name: mid
    provider_model: gpt-4o-mini
    context_window: 10000
    backends: [oai]
auth:
  keys:
    - {hash: `+k.Hash().String()+`, rpm_limit: 1}
`), os.LookupEnv); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	hdr := map[string]string{"authorization": "Bearer " + k.Reveal()}
	small := `{"model":"mid","messages":[{"role":"user","content":"hi"}]}`
	if resp := handleRequest(ctx, &routerStream{s: s, rt: s.Runtime()}, "/v1/chat/completions", small, hdr); resp.GetRequestBody() == nil {
		b.Fatal("first request not admitted")
	}
	big := `{"model":"mid","messages":[{"role":"user","content":"` + strings.Repeat("How do I configure retries in Envoy? ", 900) + `"}]}`
	b.SetBytes(int64(len(big)))
	b.ReportAllocs()
	for b.Loop() {
		resp := handleRequest(ctx, &routerStream{s: s, rt: s.Runtime()}, "/v1/chat/completions", big, hdr)
		if resp.GetImmediateResponse().GetStatus().GetCode() != 429 {
			b.Fatalf("not refused: %v", resp)
		}
	}
}

// benchMessages is benchChat as an Anthropic Messages request.
var benchMessages = `{"model":"claude","temperature":0.2,"max_tokens":512,` +
	`"system":"You are a careful assistant for a platform team. Answer briefly and cite sources.","messages":[` +
	`{"role":"user","content":"` + strings.Repeat("How do I configure retries in Envoy? ", 12) + `"},` +
	`{"role":"assistant","content":"` + strings.Repeat("Use a retry_policy on the route. ", 12) + `"},` +
	`{"role":"user","content":"` + strings.Repeat("And what about per-try timeouts? ", 10) + `"}]}`

// benchMessagesStream is an Anthropic Messages stream as the streaming
// docs show it: message_start, one text block in eight deltas, a ping,
// message_delta with usage and message_stop.
func benchMessagesStream() []byte {
	var b strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":310,\"output_tokens\":1,\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
	for range 8 {
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Set per_try_timeout on the retry policy. \"}}\n\n")
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":64}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return []byte(b.String())
}

// BenchmarkMessagesFlow is BenchmarkRequestFlow for an Anthropic SDK
// client (POST /v1/messages) served by an Anthropic backend, buffered and
// streamed (the stream in one chunk, then end of stream).
func BenchmarkMessagesFlow(b *testing.B) {
	s := New(Options{})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	hdr := map[string]string{"content-length": "1500", "user-agent": "Anthropic/JS 0.60.0", "anthropic-version": "2023-06-01"}
	for _, tc := range []struct {
		name, ct string
		body     []byte
		stream   bool
	}{
		{"buffered", "application/json", []byte(benchResponses["claude"]), false},
		{"stream", "text/event-stream", benchMessagesStream(), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reqBody := benchMessages
			if tc.stream {
				reqBody = strings.Replace(reqBody, `"max_tokens":512,`, `"max_tokens":512,"stream":true,`, 1)
			}
			reqHeaders, rb := requestHeaders("/v1/messages", hdr), requestBody(reqBody)
			respHeaders := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: headerMap(":status", "200", "content-type", tc.ct),
			}}}
			chunks := []*extprocv3.ProcessingRequest{{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: tc.body, EndOfStream: !tc.stream,
			}}}}
			if tc.stream {
				chunks = append(chunks, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{EndOfStream: true}}})
			}
			b.ReportAllocs()
			for b.Loop() {
				r := &routerStream{s: s, rt: s.Runtime()}
				r.handle(ctx, reqHeaders)
				if resp, _ := r.handle(ctx, rb); resp.GetRequestBody() == nil {
					b.Fatalf("not routed: %v", resp)
				}
				r.handle(ctx, respHeaders)
				for _, c := range chunks {
					if out, _ := r.handle(ctx, c); out.GetResponseBody() == nil {
						b.Fatal("no response body reply")
					}
				}
				r.finish(ctx)
			}
		})
	}
}
