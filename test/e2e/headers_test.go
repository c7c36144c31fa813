package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/test/devstack"
	"github.com/weir-ai/weir/test/fakeprovider"
)

// headersConfig routes one model to each provider's fake, plus an
// OpenAI-compatible backend (the vllm preset, pointed at the OpenAI fake) that
// forwards one extra header and exposes two provider headers. KEYHASH is
// replaced by a virtual key with a request limit, so Weir sets its own
// x-ratelimit-* headers.
const headersConfig = `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "${WEIR_FAKE_OPENAI_URL}/v1", credential: {value: sk-fake-openai}, forward_headers: [x-fake-behavior]}
  - name: compat
    preset: vllm
    base_url: "${WEIR_FAKE_OPENAI_URL}/v1"
    credential: {value: sk-fake-openai}
    forward_headers: [x-fake-behavior, x-tenant-id]
    expose_headers: [openai-processing-ms, x-ratelimit-limit-tokens]
  - {name: az, provider: azure, base_url: "${WEIR_FAKE_AZURE_URL}", credential: {value: fake-azure-key}, options: {api_version: "2024-10-21"}, forward_headers: [x-fake-behavior]}
  - {name: an, provider: anthropic, base_url: "${WEIR_FAKE_ANTHROPIC_URL}", credential: {value: sk-ant-fake}, forward_headers: [x-fake-behavior]}
  - {name: gm, provider: gemini, base_url: "${WEIR_FAKE_GEMINI_URL}", credential: {value: fake-gemini-key}, forward_headers: [x-fake-behavior]}
  - {name: vx, provider: vertex, base_url: "${WEIR_FAKE_VERTEX_URL}", credential: {value: fake-vertex-access-token}, options: {project: weir-dev, location: us-central1}, forward_headers: [x-fake-behavior]}
  - name: br
    provider: bedrock
    base_url: "${WEIR_FAKE_BEDROCK_URL}"
    aws: {region: us-east-1, access_key_id: AKIAFAKEFAKEFAKE, secret_access_key: fake-secret-access-key}
    forward_headers: [x-fake-behavior]
models:
  - {name: gpt-4o-mini, backends: [oa]}
  - {name: compat-model, backends: [compat], provider_model: gpt-4o-mini}
  - {name: azure-gpt-4o-mini, backends: [az], provider_model: gpt-4o-mini}
  - {name: claude-sonnet-4-5, backends: [an]}
  - {name: gemini-2.5-flash, backends: [gm]}
  - {name: vertex-gemini-2.5-flash, backends: [vx], provider_model: gemini-2.5-flash}
  - {name: bedrock-claude-sonnet-4-5, backends: [br], provider_model: "anthropic.claude-sonnet-4-5-20250929-v1:0"}
auth:
  keys:
    - {hash: KEYHASH, rpm_limit: 1000}
`

// startHeaderStack runs devstack with headersConfig and returns the
// virtual key to send.
func startHeaderStack(t *testing.T) (*devstack.Stack, string) {
	t.Helper()
	key, hash := newKey(t)
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard,
		ConfigYAML: []byte(strings.ReplaceAll(headersConfig, "KEYHASH", hash)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st, key.Reveal()
}

// spoofed are client headers no provider may receive: credentials, the
// provider-account and billing selectors, paid beta switches, AWS signing
// companions, cookies, Weir's own internal names, tracing and forwarding
// metadata, and the encodings Weir could not read back.
var spoofed = map[string]string{
	"x-api-key":           "client-key",
	"api-key":             "client-key",
	"x-goog-api-key":      "client-key",
	"openai-organization": "org-attacker",
	"openai-project":      "proj-attacker",
	"openai-beta":         "assistants=v2",
	"x-goog-user-project": "attacker-project",
	"anthropic-beta":      "prompt-caching-2024-07-31,output-128k-2025-02-19",
	"anthropic-dangerous-direct-browser-access": "true",
	"x-amz-security-token":                      "attacker-token",
	"x-amz-content-sha256":                      "UNSIGNED-PAYLOAD",
	"x-amzn-bedrock-trace":                      "ENABLED",
	"cookie":                                    "session=attacker",
	"proxy-authorization":                       "Basic YXR0YWNrZXI6eA==",
	"x-weir-filter-level":                       "upstream",
	"x-weir-cost":                               "0",
	"idempotency-key":                           "shared-across-tenants",
	"x-stainless-lang":                          "go",
	"accept-encoding":                           "gzip",
	"traceparent":                               "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	"x-forwarded-host":                          "evil.example",
	"x-custom":                                  "anything",
}

// TestClientHeadersToProviders sends every spoofed header to each provider
// and checks, on what the fake received, that exactly the provider's
// allow-list, the backend's forward_headers and Weir's own headers arrived.
func TestClientHeadersToProviders(t *testing.T) {
	st, key := startHeaderStack(t)
	// Weir's own on every provider: the route marker and the framing.
	base := []string{"content-length", "content-type", "x-request-id", "x-weir-backend"}
	tests := []struct {
		model string
		fake  fakeprovider.Kind
		// want lists, beyond base, the names the provider must receive:
		// Weir's credential and provider headers, and the allowed client
		// headers.
		want []string
	}{
		{"gpt-4o-mini", fakeprovider.OpenAI, []string{"accept", "authorization", "user-agent"}},
		{"compat-model", fakeprovider.OpenAI, []string{"accept", "authorization", "user-agent", "x-tenant-id"}},
		{"azure-gpt-4o-mini", fakeprovider.Azure, []string{"accept", "api-key", "user-agent"}},
		{"claude-sonnet-4-5", fakeprovider.Anthropic, []string{"accept", "anthropic-version", "user-agent", "x-api-key"}},
		{"gemini-2.5-flash", fakeprovider.Gemini, []string{"accept", "user-agent", "x-goog-api-key"}},
		{"vertex-gemini-2.5-flash", fakeprovider.Vertex, []string{"accept", "authorization", "user-agent"}},
		// Bedrock reads Accept as the response type: Weir decides it.
		{"bedrock-claude-sonnet-4-5", fakeprovider.Bedrock, []string{"authorization", "user-agent", "x-amz-date"}},
	}
	for _, tt := range tests {
		for _, path := range []string{"/v1/chat/completions", "/v1/messages"} {
			t.Run(tt.model+path, func(t *testing.T) {
				f := st.Fake[tt.fake]
				f.Reset()
				hdr := map[string]string{"authorization": "Bearer " + key, "accept": "application/json", "user-agent": "weir-e2e/1", "x-tenant-id": "t-1"}
				for k, v := range spoofed {
					hdr[k] = v
				}
				body := `{"model":"` + tt.model + `","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
				resp, b := post(t, st.URL+path, body, hdr)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, b)
				}
				r, ok := f.Last()
				if !ok {
					t.Fatal("provider got nothing")
				}
				var got []string
				for k := range r.Header {
					got = append(got, strings.ToLower(k))
				}
				sort.Strings(got)
				want := append(append([]string(nil), base...), tt.want...)
				sort.Strings(want)
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("provider received %v\nwant exactly     %v", got, want)
				}
				for k, v := range spoofed {
					if slicesContain(r.Header.Values(k), v) {
						t.Errorf("client's %s: %s reached the provider", k, v)
					}
				}
				if got := r.Header.Values("x-weir-backend"); len(got) != 1 {
					t.Errorf("x-weir-backend = %q", got)
				}
				if v := r.Header.Get("user-agent"); v != "weir-e2e/1" {
					t.Errorf("user-agent = %q, want the client's", v)
				}
			})
		}
	}
}

func slicesContain(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// clientVisible is every header a client may see from a provider-served
// response without expose_headers: the representation, the retry hint,
// Weir's own, and what Envoy itself writes.
var clientVisible = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true, "cache-control": true, "date": true,
	"retry-after": true, "retry-after-ms": true, "x-request-id": true,
	"x-ratelimit-limit-requests": true, "x-ratelimit-remaining-requests": true, "x-ratelimit-reset-requests": true,
}

// TestProviderHeadersToClients: a provider's account, region, request-id
// and rate-limit headers do not reach the client; Weir's x-ratelimit-*
// replace the provider's; a backend's expose_headers pass the ones it
// names, but never over Weir's own values.
func TestProviderHeadersToClients(t *testing.T) {
	st, key := startHeaderStack(t)
	models := []string{"gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "vertex-gemini-2.5-flash", "bedrock-claude-sonnet-4-5"}
	for _, m := range models {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", m, stream), func(t *testing.T) {
				body := fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, m, stream)
				resp, b := post(t, st.URL+"/v1/chat/completions", body, map[string]string{"authorization": "Bearer " + key})
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, b)
				}
				for k := range resp.Header {
					if lk := strings.ToLower(k); !clientVisible[lk] && !strings.HasPrefix(lk, "x-envoy-") {
						t.Errorf("provider header %s: %q reached the client", lk, resp.Header.Get(k))
					}
				}
				// Weir's rpm limit of 1000, not the provider account's.
				if got := resp.Header.Get("x-ratelimit-limit-requests"); got != "1000" {
					t.Errorf("x-ratelimit-limit-requests = %q, want Weir's 1000", got)
				}
				if got := resp.Header.Values("x-ratelimit-limit-requests"); len(got) != 1 {
					t.Errorf("x-ratelimit-limit-requests values = %q", got)
				}
			})
		}
	}
	t.Run("expose_headers", func(t *testing.T) {
		resp, b := post(t, st.URL+"/v1/chat/completions", `{"model":"compat-model","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"authorization": "Bearer " + key})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if resp.Header.Get("openai-processing-ms") == "" || resp.Header.Get("x-ratelimit-limit-tokens") == "" {
			t.Errorf("exposed headers missing: %v", resp.Header)
		}
		if resp.Header.Get("openai-organization") != "" || resp.Header.Get("x-ratelimit-remaining-tokens") != "" {
			t.Errorf("unexposed headers passed: %v", resp.Header)
		}
		if got := resp.Header.Get("x-ratelimit-limit-requests"); got != "1000" {
			t.Errorf("x-ratelimit-limit-requests = %q, want Weir's 1000", got)
		}
	})
}

// TestUpstreamAuthFailure: a provider that rejects Weir's credential (401
// or 403) gives the client a 502 that blames the gateway, never an
// invalid_api_key the client would take for its own key, on both ingresses.
func TestUpstreamAuthFailure(t *testing.T) {
	st, key := startHeaderStack(t)
	models := []string{"gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "vertex-gemini-2.5-flash", "bedrock-claude-sonnet-4-5"}
	for _, m := range models {
		for _, status := range []int{401, 403} {
			for _, path := range []string{"/v1/chat/completions", "/v1/messages"} {
				t.Run(fmt.Sprintf("%s %d %s", m, status, path), func(t *testing.T) {
					body := `{"model":"` + m + `","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
					resp, b := post(t, st.URL+path, body, map[string]string{"authorization": "Bearer " + key, "x-fake-behavior": fmt.Sprintf("status=%d", status)})
					if resp.StatusCode != http.StatusBadGateway {
						t.Fatalf("status %d, want 502: %s", resp.StatusCode, b)
					}
					msg := gjson.GetBytes(b, "error.message").Str
					if !strings.Contains(msg, "gateway's credential") || strings.Contains(msg, "sk-") || strings.Contains(strings.ToLower(msg), "incorrect api key") {
						t.Errorf("message = %q", msg)
					}
					if path == "/v1/messages" {
						if gjson.GetBytes(b, "type").Str != "error" || gjson.GetBytes(b, "error.type").Str != "api_error" {
							t.Errorf("not Anthropic-shaped: %s", b)
						}
						return
					}
					if typ, code := gjson.GetBytes(b, "error.type").Str, gjson.GetBytes(b, "error.code").Str; typ != "upstream_error" || code != "provider_auth_failed" {
						t.Errorf("type %q code %q: %s", typ, code, b)
					}
				})
			}
		}
	}
}

// TestUpstreamErrorRedacted: a provider error that names the gateway's
// organization reaches the client without it, its status and code kept.
func TestUpstreamErrorRedacted(t *testing.T) {
	st, key := startHeaderStack(t)
	resp, b := post(t, st.URL+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"authorization": "Bearer " + key, "x-fake-behavior": "status=429"})
	if resp.StatusCode != 429 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	msg := gjson.GetBytes(b, "error.message").Str
	if strings.Contains(msg, "fake-org") || !strings.Contains(msg, "Rate limit reached") || gjson.GetBytes(b, "error.code").Str != "rate_limit_exceeded" {
		t.Errorf("body = %s", b)
	}
}
