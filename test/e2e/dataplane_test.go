package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/test/fakeprovider"
)

func post(t *testing.T, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// What the provider receives is the real test of translation: the fakes
// record every request.
func TestUpstreamSeesTranslatedRequest(t *testing.T) {
	st := startStack(t)
	tests := []struct {
		name  string
		body  string
		hdr   map[string]string
		fake  *fakeprovider.Server
		check func(t *testing.T, r fakeprovider.Recorded)
	}{
		{
			name: "anthropic gets messages format and its own key",
			body: `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"}]}`,
			hdr:  map[string]string{"authorization": "Bearer sk-client-secret", "x-api-key": "client-key"},
			fake: st.Anthropic,
			check: func(t *testing.T, r fakeprovider.Recorded) {
				if r.Path != "/v1/messages" {
					t.Errorf("path = %s", r.Path)
				}
				if r.Header.Get("x-api-key") != "sk-ant-fake" || r.Header.Get("anthropic-version") == "" {
					t.Errorf("credential headers = %v", r.Header)
				}
				if r.Header.Get("authorization") != "" {
					t.Error("client authorization leaked upstream")
				}
				if gjson.GetBytes(r.Body, "system").String() != "sys" || gjson.GetBytes(r.Body, "max_tokens").Int() != 64 || gjson.GetBytes(r.Body, "model").Str != "claude-sonnet-4-5" {
					t.Errorf("body = %s", r.Body)
				}
				if cl := r.Header.Get("content-length"); cl != "" && cl != itoa(len(r.Body)) {
					t.Errorf("content-length %s for %d bytes", cl, len(r.Body))
				}
			},
		},
		{
			name: "openai wildcard strips namespace and swaps key",
			body: `{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"hi"}]}`,
			hdr:  map[string]string{"authorization": "Bearer sk-client-secret"},
			fake: st.OpenAI,
			check: func(t *testing.T, r fakeprovider.Recorded) {
				if r.Path != "/v1/chat/completions" || gjson.GetBytes(r.Body, "model").Str != "gpt-4.1" {
					t.Errorf("path %s body %s", r.Path, r.Body)
				}
				if r.Header.Get("authorization") != "Bearer sk-fake-openai" {
					t.Errorf("authorization = %q", r.Header.Get("authorization"))
				}
			},
		},
		{
			name: "client cannot pick a backend with an internal header",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
			hdr:  map[string]string{"x-weir-backend": "fake-anthropic"},
			fake: st.OpenAI,
			check: func(t *testing.T, r fakeprovider.Recorded) {
				// The HCM strips the client's value before routing; the one
				// the provider sees is Weir's own marker of the backend the
				// request was prepared for (extproc/DESIGN.md).
				if got := r.Header.Values("x-weir-backend"); len(got) != 1 || got[0] != "fake-openai" {
					t.Errorf("x-weir-backend at the provider = %q, want Weir's [fake-openai]", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fake.Reset()
			resp, body := post(t, st.URL+"/v1/chat/completions", tt.body, tt.hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			r, ok := tt.fake.Last()
			if !ok {
				t.Fatal("provider got nothing")
			}
			tt.check(t, r)
		})
	}
}

func TestErrorsAreOpenAIShaped(t *testing.T) {
	st := startStack(t)
	tests := []struct {
		name       string
		path, body string
		hdr        map[string]string
		wantStatus int
		wantType   string
	}{
		{"anthropic 429 translated", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-fake-behavior": "status=429"}, 429, "rate_limit_error"},
		{"anthropic overloaded 529", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-fake-behavior": "status=529"}, 529, "server_error"},
		{"html from a proxy", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-fake-behavior": "non-json-error=502"}, 502, "server_error"},
		{"401 with no body is the gateway's credential", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-fake-behavior": "empty-error=401"}, 502, "upstream_error"},
		{"503 with no body", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-fake-behavior": "empty-error=503"}, 503, "upstream_error"},
		{"unknown path", "/v1/nope", `{}`, nil, 404, "invalid_request_error"},
		{"bad json", "/v1/chat/completions", `{`, nil, 400, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, st.URL+tt.path, tt.body, tt.hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			var e struct {
				Error struct{ Message, Type string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != tt.wantType || e.Error.Message == "" {
				t.Errorf("body = %s", body)
			}
			if ct := resp.Header.Get("content-type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content-type = %q", ct)
			}
		})
	}
}

func TestStreamCutMidway(t *testing.T) {
	st := startStack(t)
	for _, model := range []string{"gpt-4o-mini", "claude-sonnet-4-5"} {
		t.Run(model, func(t *testing.T) {
			req, err := http.NewRequest("POST", st.URL+"/v1/chat/completions", strings.NewReader(
				`{"model":"`+model+`","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("content-type", "application/json")
			req.Header.Set("x-fake-behavior", "cut-after=3")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// Headers went out before the cut, so the status stays 200.
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// Envoy resets the downstream stream when the upstream resets
			// mid-body: the client must see a transport error, never a
			// stream that looks complete.
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Errorf("read ended cleanly; want the reset to reach the client: %s", body)
			}
			if strings.Contains(string(body), `"finish_reason":"stop"`) || strings.Contains(string(body), "[DONE]") {
				t.Errorf("a cut stream must not look complete: %s", body)
			}
		})
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	st := startStack(t)
	post(t, st.URL+"/v1/chat/completions", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"count me"}]}`, nil)
	post(t, st.URL+"/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, nil)
	// Metrics are written when each ext_proc stream ends, just after the
	// client has its response. Closing the stack drains every stream, so
	// after Close the counts are final: no polling, no sleeping.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	reg := st.Server.Metrics().Registry
	tests := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"weir_requests_total", map[string]string{"model": "claude-sonnet-4-5", "backend": "fake-anthropic", "status": "200"}, 1},
		{"weir_requests_total", map[string]string{"model": "", "status": "404"}, 1},
		{"weir_tokens_total", map[string]string{"model": "claude-sonnet-4-5", "type": "completion"}, -1},
	}
	for _, tt := range tests {
		got, found := gather(t, reg, tt.metric, tt.labels)
		if !found || (tt.want >= 0 && got != tt.want) || (tt.want < 0 && got <= 0) {
			t.Errorf("%s%v = %v (found %v), want %v", tt.metric, tt.labels, got, found, tt.want)
		}
	}
}

// gather sums the samples of a counter whose labels include want.
func gather(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			found = true
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, found
}

func itoa(n int) string { return strconv.Itoa(n) }
