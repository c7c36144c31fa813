package fakeprovider

import (
	"strings"
	"testing"
)

func TestGemini(t *testing.T) {
	const tools = `"tools":[{"functionDeclarations":[{"name":"first","parametersJsonSchema":{"type":"object","properties":{"s":{"type":"string"}},"required":["s"]}},{"name":"second","parameters":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}}]}]`
	cases := []struct {
		name, path, body string
		hdr              map[string]string
		key              string
		wantStatus       int
		want             []string // substrings of the body
	}{
		{name: "text", path: "/v1beta/models/gemini-2.5-flash:generateContent",
			body:       `{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hello there"}]}]}`,
			wantStatus: 200, want: []string{`"text":"Hello from fake-gemini! You said: hello there"`, `"finishReason":"STOP"`, `"promptTokenCount":10`, `"candidatesTokenCount":7`, `"totalTokenCount":17`, `"modelVersion":"gemini-2.5-flash"`, `"responseId":"fakeresp000001"`}},
		{name: "max tokens", path: "/v1beta/models/m:generateContent",
			body:       `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":2}}`,
			wantStatus: 200, want: []string{`"text":"Hello from"`, `"finishReason":"MAX_TOKENS"`}},
		{name: "exact usage and cached", path: "/v1beta/models/m:generateContent", hdr: map[string]string{BehaviorHeader: "exact-usage,cached=50"},
			body:       `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":9}}`,
			wantStatus: 200, want: []string{`"candidatesTokenCount":9`, `"cachedContentTokenCount":50`, `"promptTokenCount":50`}},
		{name: "tool call", path: "/v1beta/models/m:generateContent",
			body:       `{"contents":[{"role":"user","parts":[{"text":"go"}]}],` + tools + `}`,
			wantStatus: 200, want: []string{`"functionCall":{"args":{"s":"test"},"name":"first"}`}},
		{name: "forced tool", path: "/v1beta/models/m:generateContent",
			body:       `{"contents":[{"role":"user","parts":[{"text":"go"}]}],` + tools + `,"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["second"]}}}`,
			wantStatus: 200, want: []string{`"functionCall":{"args":{"n":1},"name":"second"}`}},
		{name: "tool mode none", path: "/v1beta/models/m:generateContent",
			body:       `{"contents":[{"role":"user","parts":[{"text":"go"}]}],` + tools + `,"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}}`,
			wantStatus: 200, want: []string{`You said: go`}},
		{name: "function response", path: "/v1beta/models/m:generateContent",
			body: `{"contents":[{"role":"user","parts":[{"text":"w"}]},{"role":"model","parts":[{"functionCall":{"name":"first","args":{"s":"x"}}}]},
				{"role":"user","parts":[{"functionResponse":{"name":"first","response":{"result":"sunny"}}}]}],` + tools + `}`,
			wantStatus: 200, want: []string{`Tool result: {\"result\":\"sunny\"}`}},
		{name: "stream", path: "/v1beta/models/m:streamGenerateContent?alt=sse",
			body:       `{"contents":[{"parts":[{"text":"a b"}]}]}`,
			wantStatus: 200, want: []string{"data: {", "\r\n\r\n", `"text":" b"`, `"finishReason":"STOP"`}},
		{name: "stream error", path: "/v1beta/models/m:streamGenerateContent?alt=sse", hdr: map[string]string{BehaviorHeader: "stream-error"},
			body:       `{"contents":[{"parts":[{"text":"a b"}]}]}`,
			wantStatus: 200, want: []string{`"status":"UNAVAILABLE"`}},
		{name: "embed", path: "/v1beta/models/e:embedContent",
			body:       `{"content":{"parts":[{"text":"x"}]},"outputDimensionality":3}`,
			wantStatus: 200, want: []string{`{"embedding":{"values":[`}},
		{name: "batch embed", path: "/v1beta/models/e:batchEmbedContents",
			body:       `{"requests":[{"model":"models/e","content":{"parts":[{"text":"x"}]}},{"model":"models/e","content":{"parts":[{"text":"y"}]}}]}`,
			wantStatus: 200, want: []string{`{"embeddings":[{"values":[`}},
		{name: "batch model mismatch", path: "/v1beta/models/e:batchEmbedContents",
			body:       `{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}`,
			wantStatus: 400, want: []string{`"status":"INVALID_ARGUMENT"`}},
		{name: "no contents", path: "/v1beta/models/m:generateContent", body: `{"contents":[]}`,
			wantStatus: 400, want: []string{`"code":400`, `"status":"INVALID_ARGUMENT"`}},
		{name: "bad role", path: "/v1beta/models/m:generateContent", body: `{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}`,
			wantStatus: 400, want: []string{`valid role`}},
		{name: "unknown field", path: "/v1beta/models/m:generateContent", body: `{"messages":[]}`,
			wantStatus: 400, want: []string{`Invalid JSON payload`}},
		{name: "function call in user turn", path: "/v1beta/models/m:generateContent", body: `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f"}}]}]}`,
			wantStatus: 400},
		{name: "wrong key", path: "/v1beta/models/m:generateContent", key: "k", hdr: map[string]string{"x-goog-api-key": "bad"},
			body: `{"contents":[{"parts":[{"text":"x"}]}]}`, wantStatus: 400, want: []string{`API_KEY_INVALID`}},
		{name: "no key", path: "/v1beta/models/m:generateContent", key: "k",
			body: `{"contents":[{"parts":[{"text":"x"}]}]}`, wantStatus: 403, want: []string{`PERMISSION_DENIED`}},
		{name: "right key", path: "/v1beta/models/m:generateContent", key: "k", hdr: map[string]string{"x-goog-api-key": "k"},
			body: `{"contents":[{"parts":[{"text":"x"}]}]}`, wantStatus: 200},
		{name: "status 429", path: "/v1beta/models/m:generateContent", hdr: map[string]string{BehaviorHeader: "status=429"},
			body: `{}`, wantStatus: 429, want: []string{`"status":"RESOURCE_EXHAUSTED"`, `RetryInfo`}},
		{name: "unknown path", path: "/v1/chat/completions", body: `{}`, wantStatus: 404, want: []string{`"status":"NOT_FOUND"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTest(t, Gemini)
			s.RequireKey(tc.key)
			r := do(t, Gemini, "POST", url+tc.path, tc.body, tc.hdr)
			if r.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.wantStatus, r.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.Body), w) {
					t.Errorf("body lacks %q:\n%s", w, r.Body)
				}
			}
			if tc.wantStatus >= 400 {
				m := r.json(t)
				if get(t, m, "error", "code") != float64(tc.wantStatus) || get(t, m, "error", "message") == "" {
					t.Errorf("error body %s", r.Body)
				}
			}
			if strings.Contains(tc.path, "alt=sse") {
				if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("content-type %q", ct)
				}
				evs := parseSSE(t, r.Body)
				for _, ev := range evs {
					decodeJSON(t, ev.Data)
				}
			}
		})
	}
}

func TestGeminiStreamCut(t *testing.T) {
	_, url := newTest(t, Gemini)
	r := do(t, Gemini, "POST", url+"/v1beta/models/m:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"a b c d"}]}]}`,
		map[string]string{BehaviorHeader: "cut-after=2"})
	if n := strings.Count(string(r.Body), "data: "); n != 2 || strings.Contains(string(r.Body), "finishReason") {
		t.Errorf("cut stream: %d events\n%s", n, r.Body)
	}
}
