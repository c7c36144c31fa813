package fakeprovider

import (
	"strings"
	"testing"
)

func TestAzure(t *testing.T) {
	cases := []struct {
		name, path, body string
		hdr              map[string]string
		key              string
		wantStatus       int
		want             []string
	}{
		{name: "chat", path: "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
			body:       `{"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 200, want: []string{`"model":"gpt4o-prod"`, `You said: hi`, `"object":"chat.completion"`}},
		{name: "stream with usage", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21",
			body:       `{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 200, want: []string{`"object":"chat.completion.chunk"`, `"prompt_tokens":4`, "data: [DONE]"}},
		{name: "embeddings", path: "/openai/deployments/emb/embeddings?api-version=2024-10-21",
			body: `{"input":["a","b"]}`, wantStatus: 200, want: []string{`"object":"list"`, `"model":"emb"`}},
		{name: "v1 API", path: "/openai/v1/chat/completions",
			body: `{"model":"d","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 200, want: []string{`"model":"d"`}},
		{name: "no api-version", path: "/openai/deployments/d/chat/completions",
			body: `{}`, wantStatus: 404, want: []string{`"code":"404"`, `Resource not found`}},
		{name: "content filter", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21", hdr: map[string]string{BehaviorHeader: "status=400"},
			body: `{}`, wantStatus: 400, want: []string{`"code":"content_filter"`, `"type":null`, `ResponsibleAIPolicyViolation`, `"filtered":true`}},
		{name: "429", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21", hdr: map[string]string{BehaviorHeader: "status=429"},
			body: `{}`, wantStatus: 429, want: []string{`"code":"429"`}},
		{name: "404 deployment", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21", hdr: map[string]string{BehaviorHeader: "status=404"},
			body: `{}`, wantStatus: 404, want: []string{`DeploymentNotFound`}},
		{name: "wrong key", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21", key: "k", hdr: map[string]string{"api-key": "x"},
			body: `{}`, wantStatus: 401, want: []string{`"code":"401"`, `Access denied`}},
		{name: "wrong bearer", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21", key: "k", hdr: map[string]string{"Authorization": "Bearer x"},
			body: `{}`, wantStatus: 401},
		{name: "right key", path: "/openai/deployments/d/chat/completions?api-version=2024-10-21", key: "k", hdr: map[string]string{"api-key": "k"},
			body: `{"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTest(t, Azure)
			s.RequireKey(tc.key)
			r := do(t, Azure, "POST", url+tc.path, tc.body, tc.hdr)
			if r.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.wantStatus, r.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.Body), w) {
					t.Errorf("body lacks %q:\n%s", w, r.Body)
				}
			}
			if r.Header.Get("apim-request-id") == "" || r.Header.Get("x-ratelimit-remaining-requests") == "" {
				t.Errorf("headers %v", r.Header)
			}
			if tc.wantStatus == 429 && r.Header.Get("retry-after") != "1" {
				t.Errorf("no retry-after")
			}
		})
	}
}

func TestAzureBearerAuth(t *testing.T) {
	for _, tc := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"Authorization": "Bearer k"}, 200},
		{map[string]string{"api-key": "k"}, 200},
		{map[string]string{"Authorization": "Bearer other"}, 401},
		{nil, 401},
	} {
		s, base := newTest(t, Azure)
		s.RequireKey("k")
		r := do(t, Azure, "POST", base+"/openai/deployments/d/chat/completions?api-version=2024-10-21",
			`{"messages":[{"role":"user","content":"hi"}]}`, tc.hdr)
		if r.Status != tc.want {
			t.Errorf("%v: status %d, want %d: %s", tc.hdr, r.Status, tc.want, r.Body)
		}
	}
}
