package extproc

import (
	"bytes"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
)

// spoofedRequest is a client's request headers beyond requestHeaders'
// defaults: credentials, account selectors, a cookie, forwarding
// metadata Envoy added, an x-weir-* the HCM would have stripped, and what
// the allow-lists pass.
var spoofedRequest = map[string]string{
	"authorization": "Bearer sk-client", "x-api-key": "sk-client2", "openai-organization": "org-attacker",
	"cookie": "s=1", "x-forwarded-for": "10.0.0.1", "x-weir-cost": "0", "x-envoy-expected-rq-timeout-ms": "1",
	"content-length": "70", "user-agent": "sdk/1", "accept": "application/json", "x-tenant-id": "t1", "anthropic-beta": "x",
}

func sortedRemovals(hm *extprocv3.HeaderMutation) string {
	r := append([]string(nil), hm.GetRemoveHeaders()...)
	sort.Strings(r)
	return strings.Join(r, ",")
}

// TestRequestAllowList: the router-level body reply removes every client
// header the backend may not receive, and only those: not the ones it
// sets again (Weir's value wins), not the allow-list's, not Envoy's.
func TestRequestAllowList(t *testing.T) {
	c, _ := newTestClientWith(t, strings.Replace(testConfig, "    headers: {openai-organization: org-1}\n",
		"    headers: {openai-organization: org-1}\n    forward_headers: [x-tenant-id]\n", 1))
	tests := []struct {
		model       string
		wantRemoved string
		wantSet     map[string]string
	}{
		// openai: authorization and openai-organization are Weir's.
		{"gpt-4o-mini", "anthropic-beta,cookie,x-api-key,x-forwarded-for,x-weir-cost", map[string]string{"authorization": "Bearer sk-upstream", "openai-organization": "org-1"}},
		// anthropic: x-api-key is Weir's; no forward_headers here.
		{"claude", "anthropic-beta,authorization,cookie,openai-organization,x-forwarded-for,x-tenant-id,x-weir-cost", map[string]string{"x-api-key": "sk-ant"}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			st := openStream(t, c, config.FilterLevelRouter)
			resp := roundTripRequest(t, st, "/v1/chat/completions", `{"model":"`+tt.model+`","messages":[{"role":"user","content":"hi"}]}`, spoofedRequest)
			hm := resp.GetRequestBody().GetResponse().GetHeaderMutation()
			if got := sortedRemovals(hm); got != tt.wantRemoved {
				t.Errorf("removed %s\nwant    %s", got, tt.wantRemoved)
			}
			set := mutated(hm)
			for k, v := range tt.wantSet {
				if set[k] != v {
					t.Errorf("%s = %q, want %q", k, set[k], v)
				}
			}
		})
	}
}

// TestUpstreamAllowList: an attempt re-prepared for another backend
// removes, from the shared header map, what that backend may not receive,
// including a header the first backend's allow-list let through.
func TestUpstreamAllowList(t *testing.T) {
	c, _ := newTestClientWith(t, strings.Replace(testConfig, "backends:\n",
		"backends:\n  - {name: oai2, provider: openai, base_url: \"https://other.example/v1\", credential: {value: sk-other}}\n", 1))
	st := openStream(t, c, config.FilterLevelUpstream)
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{config.MetadataNamespace: stringStruct(
		config.MetaBackend, "oai", config.MetaModel, "gpt-4o-mini", config.MetaEndpoint, "chat", config.MetaRequestID, "req-1",
		config.MetaClientModel, "gpt-4o-mini", config.MetaStream, "false", config.MetaHeaders, ":path,:authority,content-type,openai-organization,authorization")}}
	hreq := &extprocv3.ProcessingRequest{MetadataContext: md, Attributes: attrs(map[string]string{config.AttrHostBackend: "oai2"}),
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(
			":path", "/v1/chat/completions", ":authority", "api.openai.example", config.HeaderBackend, "oai", "authorization", "Bearer sk-upstream",
			"openai-organization", "org-1", "content-type", "application/json", "content-length", "37", "x-request-id", "req-1",
			"user-agent", "sdk/1", "x-tenant-id", "t1", "x-envoy-expected-rq-timeout-ms", "300000")}}}
	if resp := roundTrip(t, st, hreq); resp.GetRequestHeaders() == nil {
		t.Fatalf("headers reply = %v", resp)
	}
	resp := roundTrip(t, st, &extprocv3.ProcessingRequest{MetadataContext: md,
		Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(`{"model":"gpt-4o-mini","messages":[]}`), EndOfStream: true}}})
	hm := resp.GetRequestBody().GetResponse().GetHeaderMutation()
	if got, want := sortedRemovals(hm), "openai-organization,x-tenant-id"; got != want {
		t.Errorf("removed %s, want %s", got, want)
	}
}

// TestResponseAllowList: provider headers go, Weir's and the defaults
// stay; expose_headers passes what it names.
func TestResponseAllowList(t *testing.T) {
	c, _ := newTestClientWith(t, strings.Replace(testConfig, "    headers: {openai-organization: org-1}\n",
		"    headers: {openai-organization: org-1}\n    expose_headers: [openai-processing-ms]\n", 1))
	st := routedStream(t, c, "gpt-4o-mini", "")
	resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: headerMap(":status", "429", "content-type", "application/json", "content-length", "10", "date", "x", "retry-after", "1",
			"openai-organization", "org-x", "openai-processing-ms", "5", "x-ratelimit-limit-tokens", "200000", "x-request-id", "req_provider",
			"set-cookie", "__cf_bm=1", "x-envoy-upstream-service-time", "3", "x-weir-refusal-rule", "key.rpm"),
	}}})
	hm := resp.GetResponseHeaders().GetResponse().GetHeaderMutation()
	if got, want := sortedRemovals(hm), "openai-organization,set-cookie,x-ratelimit-limit-tokens,x-weir-refusal-rule"; got != want {
		t.Errorf("removed %s, want %s", got, want)
	}
	if mutated(hm)["x-request-id"] != "req-1" {
		t.Errorf("x-request-id not Weir's: %v", mutated(hm))
	}
}

// TestProviderAuthFailure: a provider's 401 becomes a 502 naming the
// gateway's credential, and is logged at warn with the request id and no
// part of the provider's reply.
func TestProviderAuthFailure(t *testing.T) {
	var logs lockedBuffer
	s := New(Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	c := serveTest(t, s)
	st := routedStream(t, c, "gpt-4o-mini", "")
	resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: headerMap(":status", "401", "content-type", "application/json"),
	}}})
	if got := mutated(resp.GetResponseHeaders().GetResponse().GetHeaderMutation())[":status"]; got != "502" {
		t.Errorf(":status = %q, want 502", got)
	}
	resp = roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
		Body: []byte(`{"error":{"message":"Incorrect API key provided: sk-upst****ream.","type":"invalid_request_error","code":"invalid_api_key"}}`), EndOfStream: true,
	}}})
	common := resp.GetResponseBody().GetResponse()
	body := common.GetBodyMutation().GetBody()
	if gjson.GetBytes(body, "error.code").Str != "provider_auth_failed" || gjson.GetBytes(body, "error.type").Str != "upstream_error" || bytes.Contains(body, []byte("sk-")) {
		t.Errorf("body = %s", body)
	}
	if h := mutated(common.GetHeaderMutation()); h[":status"] != "502" || h["content-length"] != itoa(len(body)) {
		t.Errorf("headers = %v", h)
	}
	var line map[string]any
	for _, l := range bytes.Split(logs.bytes(), []byte("\n")) {
		if bytes.Contains(l, []byte("rejected the gateway's credential")) {
			line = map[string]any{"level": gjson.GetBytes(l, "level").Str, "request_id": gjson.GetBytes(l, "request_id").Str, "status": gjson.GetBytes(l, "upstream_status").Int()}
			if bytes.Contains(l, []byte("sk-")) {
				t.Errorf("secret in log: %s", l)
			}
		}
	}
	if line == nil || line["level"] != "WARN" || line["request_id"] != "req-1" || line["status"] != int64(401) {
		t.Errorf("log line = %v; logs:\n%s", line, logs.bytes())
	}
}

// TestBodilessUpstreamError: a provider error whose headers end the
// response (no body) still reaches the client as a JSON error, in the
// ingress's shape: Envoy holds the response headers for the reply, so an
// immediate response replaces them (ext_proc.cc sendImmediateResponse on
// the encode path). The provider's Retry-After is kept.
func TestBodilessUpstreamError(t *testing.T) {
	tests := []struct {
		name, status, retryAfter string
		wantStatus               int
		wantCode                 string
	}{
		{"401 is the gateway's credential", "401", "", 502, "provider_auth_failed"},
		{"403 is the gateway's credential", "403", "", 502, "provider_auth_failed"},
		{"429 keeps its status and Retry-After", "429", "7", 429, "upstream_error"},
		{"500", "500", "", 500, "upstream_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Logger: slog.New(slog.DiscardHandler)})
			if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
				t.Fatal(err)
			}
			c := serveTest(t, s)
			st := routedStream(t, c, "gpt-4o-mini", "")
			hs := []string{":status", tt.status}
			if tt.retryAfter != "" {
				hs = append(hs, "retry-after", tt.retryAfter)
			}
			resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: headerMap(hs...), EndOfStream: true,
			}}})
			ir := resp.GetImmediateResponse()
			if ir == nil {
				t.Fatalf("no immediate response: %v", resp)
			}
			h := mutated(ir.GetHeaders())
			if int(ir.GetStatus().GetCode()) != tt.wantStatus || gjson.GetBytes(ir.GetBody(), "error.code").Str != tt.wantCode ||
				gjson.GetBytes(ir.GetBody(), "error.message").Str == "" || h["content-type"] != "application/json" {
				t.Errorf("got %d %s %v", ir.GetStatus().GetCode(), ir.GetBody(), h)
			}
			if h["retry-after"] != tt.retryAfter {
				t.Errorf("retry-after %q, want %q", h["retry-after"], tt.retryAfter)
			}
		})
	}
}
