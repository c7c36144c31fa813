package fakeprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	wprovider "github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/vertex"
)

const vxBase = "/v1/projects/p/locations/us-east5/publishers/"

func TestVertex(t *testing.T) {
	bearer := map[string]string{"Authorization": "Bearer tok"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"Authorization": "Bearer tok"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name, path, body string
		hdr              map[string]string
		key              string
		wantStatus       int
		want             []string
	}{
		{name: "gemini", path: vxBase + "google/models/gemini-2.5-flash:generateContent", hdr: bearer,
			body:       `{"contents":[{"role":"user","parts":[{"text":"hello there"}]}]}`,
			wantStatus: 200, want: []string{`Hello from fake-vertex! You said: hello there`, `"finishReason":"STOP"`, `"modelVersion":"gemini-2.5-flash"`}},
		{name: "gemini stream", path: vxBase + "google/models/gemini-2.5-flash:streamGenerateContent?alt=sse", hdr: bearer,
			body:       `{"contents":[{"parts":[{"text":"a b"}]}]}`,
			wantStatus: 200, want: []string{"data: {", `"finishReason":"STOP"`}},
		{name: "claude", path: vxBase + "anthropic/models/claude-haiku-4-5@20251001:rawPredict", hdr: bearer,
			body:       `{"anthropic_version":"vertex-2023-10-16","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 200, want: []string{`"type":"message"`, `"model":"claude-haiku-4-5@20251001"`, `You said: hi`, `"stop_reason":"end_turn"`}},
		{name: "claude stream", path: vxBase + "anthropic/models/claude-haiku-4-5@20251001:streamRawPredict", hdr: bearer,
			body:       `{"anthropic_version":"vertex-2023-10-16","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 200, want: []string{"event: message_start", "event: message_stop"}},
		{name: "claude with model", path: vxBase + "anthropic/models/claude-haiku-4-5@20251001:rawPredict", hdr: bearer,
			body:       `{"model":"x","anthropic_version":"vertex-2023-10-16","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 400, want: []string{`model`}},
		{name: "claude without version", path: vxBase + "anthropic/models/claude-haiku-4-5@20251001:rawPredict", hdr: bearer,
			body:       `{"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 400, want: []string{`anthropic_version`}},
		{name: "embeddings", path: vxBase + "google/models/text-embedding-005:predict", hdr: bearer,
			body:       `{"instances":[{"content":"one two"},{"content":"three"}],"parameters":{"outputDimensionality":4}}`,
			wantStatus: 200, want: []string{`"predictions":[{"embeddings":{"statistics":{"token_count":2,"truncated":false},"values":[`, `"billableCharacterCount":12`}},
		{name: "no token", path: vxBase + "google/models/m:generateContent",
			body: `{"contents":[{"parts":[{"text":"x"}]}]}`, wantStatus: 401, want: []string{`"status":"UNAUTHENTICATED"`}},
		{name: "wrong token", path: vxBase + "google/models/m:generateContent", key: "right", hdr: bearer,
			body: `{"contents":[{"parts":[{"text":"x"}]}]}`, wantStatus: 401, want: []string{`"status":"UNAUTHENTICATED"`}},
		{name: "right token", path: vxBase + "google/models/m:generateContent", key: "tok", hdr: bearer,
			body: `{"contents":[{"parts":[{"text":"x"}]}]}`, wantStatus: 200},
		{name: "status 429", path: vxBase + "google/models/m:generateContent", hdr: with(map[string]string{BehaviorHeader: "status=429"}),
			body: `{}`, wantStatus: 429, want: []string{`"status":"RESOURCE_EXHAUSTED"`}},
		{name: "ai studio path", path: "/v1beta/models/m:generateContent", hdr: bearer, body: `{}`, wantStatus: 404, want: []string{`"status":"NOT_FOUND"`}},
		{name: "unknown publisher", path: vxBase + "meta/models/llama:rawPredict", hdr: bearer, body: `{}`, wantStatus: 404},
		{name: "wrong method", path: vxBase + "anthropic/models/claude-x:generateContent", hdr: bearer, body: `{}`, wantStatus: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, base := newTest(t, Vertex)
			s.RequireKey(tc.key)
			r := do(t, Vertex, "POST", base+tc.path, tc.body, tc.hdr)
			if r.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.wantStatus, r.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.Body), w) {
					t.Errorf("body lacks %q:\n%s", w, r.Body)
				}
			}
			if strings.Contains(tc.path, "stream") && r.Status == 200 {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
					t.Errorf("content-type %q", ct)
				}
				for _, ev := range parseSSE(t, r.Body) {
					decodeJSON(t, ev.Data)
				}
			}
		})
	}
}

func TestVertexToken(t *testing.T) {
	cases := []struct {
		name, key, form string
		wantStatus      int
		wantToken       string
	}{
		{"jwt grant", "", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c", 200, "ya29.fake-vertex-"},
		{"required key is the token", "k1", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c", 200, "k1"},
		{"wrong grant", "", "grant_type=client_credentials", 400, ""},
		{"no assertion", "", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, base := newTest(t, Vertex)
			s.RequireKey(tc.key)
			resp, err := http.Post(base+"/token", "application/x-www-form-urlencoded", strings.NewReader(tc.form))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.wantStatus != 200 {
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
				TokenType   string `json:"token_type"`
			}
			if err := json.Unmarshal(body, &tok); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.AccessToken, tc.wantToken) || tok.ExpiresIn != 3599 || tok.TokenType != "Bearer" {
				t.Fatalf("token %+v", tok)
			}
		})
	}
}

// TestVertexTranslatorEndToEnd runs the vertex translator against the fake:
// the token comes from the fake's /token through a service-account key.
func TestVertexTranslatorEndToEnd(t *testing.T) {
	s, base := newTest(t, Vertex)
	s.RequireKey("sa-token")
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "p", "client_email": "weir@p.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": base + "/token"})
	tr, err := vertex.New(&config.Backend{Name: "vx", Provider: "vertex", BaseURL: base,
		Options: map[string]string{"location": "us-east5"}, Credential: &config.Credential{Key: config.Secret(sa)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.(vertex.Translator).Close()
	for _, model := range []string{"gemini-2.5-flash", "claude-haiku-4-5@20251001"} {
		req := &wprovider.Request{Endpoint: wprovider.EndpointChat, Model: model,
			Body: []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"ping"}]}`)}
		var up *wprovider.Upstream
		deadline := time.Now().Add(10 * time.Second)
		for up == nil {
			if up, err = tr.TranslateRequest(req); err != nil {
				if time.Now().After(deadline) {
					t.Fatalf("no token from the fake: %v", err)
				}
				time.Sleep(10 * time.Millisecond) // the first fetch runs in the background
			}
		}
		hreq, _ := http.NewRequest("POST", base+up.Path, strings.NewReader(string(up.Body)))
		for _, h := range up.Headers {
			hreq.Header.Set(h.Key, h.Value)
		}
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", model, resp.StatusCode, body)
		}
		out, usage, err := tr.TranslateResponse(&wprovider.Response{Endpoint: wprovider.EndpointChat, Status: 200, Body: body, Model: "client-model"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `"content":"Hello from fake-vertex! You said: ping"`) || !usage.Known() {
			t.Errorf("%s: %s (usage %+v)", model, out, usage)
		}
	}
	tokens := 0
	for _, r := range s.Requests() {
		if r.Path == "/token" {
			tokens++
			if q, _ := url.ParseQuery(string(r.Body)); strings.Count(q.Get("assertion"), ".") != 2 {
				t.Errorf("token request without a JWT: %s", r.Body)
			}
		}
	}
	if tokens != 1 {
		t.Errorf("%d token fetches, want 1", tokens)
	}
}
