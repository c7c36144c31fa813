package openai

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
)

func newT(t testing.TB, key string) provider.Translator {
	b := &config.Backend{Name: "o", Provider: "openai", BaseURL: "https://x/v1"}
	if key != "" {
		b.Credential = &config.Credential{Key: config.Secret(key)}
	}
	tr, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTranslateRequest(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		req      provider.Request
		wantPath string
		wantAuth string
		wantBody string // "" means unchanged (nil)
	}{
		{"chat passthrough", "sk-1", provider.Request{Endpoint: provider.EndpointChat, Model: "gpt-4o", ClientModel: "gpt-4o", Body: []byte(`{"model":"gpt-4o","messages":[]}`)}, "/chat/completions", "Bearer sk-1", ""},
		{"keyless server", "", provider.Request{Endpoint: provider.EndpointChat, Model: "m", ClientModel: "m", Body: []byte(`{"model":"m"}`)}, "/chat/completions", "", ""},
		{"model renamed", "k", provider.Request{Endpoint: provider.EndpointChat, Model: "gpt-4.1", ClientModel: "openai/gpt-4.1", Body: []byte(`{"model":"openai/gpt-4.1","messages":[]}`)}, "/chat/completions", "Bearer k", `{"model":"gpt-4.1","messages":[]}`},
		{"stream gets usage", "k", provider.Request{Endpoint: provider.EndpointChat, Model: "m", ClientModel: "m", Stream: true, Body: []byte(`{"model":"m","stream":true}`)}, "/chat/completions", "Bearer k", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"stream usage already asked", "k", provider.Request{Endpoint: provider.EndpointChat, Model: "m", ClientModel: "m", Stream: true, Body: []byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`)}, "/chat/completions", "Bearer k", ""},
		{"embeddings", "k", provider.Request{Endpoint: provider.EndpointEmbeddings, Model: "e", ClientModel: "e", Body: []byte(`{"model":"e","input":"x"}`)}, "/embeddings", "Bearer k", ""},
		{"legacy completions stream", "k", provider.Request{Endpoint: provider.EndpointCompletions, Model: "c", ClientModel: "c", Stream: true, Body: []byte(`{"model":"c","prompt":"x","stream":true}`)}, "/completions", "Bearer k", `{"model":"c","prompt":"x","stream":true,"stream_options":{"include_usage":true}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := string(tt.req.Body)
			up, err := newT(t, tt.key).TranslateRequest(&tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if string(tt.req.Body) != orig {
				t.Error("client body modified in place")
			}
			if up.Path != tt.wantPath {
				t.Errorf("path = %q", up.Path)
			}
			auth := ""
			for _, h := range up.Headers {
				if h.Key == "authorization" {
					auth = h.Value
				}
			}
			if auth != tt.wantAuth {
				t.Errorf("authorization = %q, want %q", auth, tt.wantAuth)
			}
			if tt.wantBody == "" {
				if up.Body != nil {
					t.Errorf("body changed: %s", up.Body)
				}
			} else if string(up.Body) != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", up.Body, tt.wantBody)
			}
		})
	}
}

func TestTranslateResponse(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantUsage provider.Usage
		wantErr   bool
		wantType  string // error body type when rewritten
	}{
		{"usage with cache", 200, `{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}}}`, provider.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CachedTokens: 4}, false, ""},
		{"embeddings usage", 200, `{"usage":{"prompt_tokens":3,"total_tokens":3}}`, provider.Usage{PromptTokens: 3, TotalTokens: 3}, false, ""},
		{"not json", 200, `<html>`, provider.Usage{}, true, ""},
		{"openai error kept", 429, `{"error":{"message":"slow","type":"requests","code":"rate_limit_exceeded"}}`, provider.Usage{}, false, ""},
		{"vllm detail wrapped", 400, `{"detail":"bad prompt"}`, provider.Usage{}, false, "invalid_request_error"},
		{"html wrapped", 503, `<h1>down</h1>`, provider.Usage{}, false, "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, u, err := newT(t, "k").TranslateResponse(&provider.Response{Endpoint: provider.EndpointChat, Status: tt.status, Body: []byte(tt.body)})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if u != tt.wantUsage {
				t.Errorf("usage = %+v, want %+v", u, tt.wantUsage)
			}
			if tt.wantType == "" {
				if out != nil {
					t.Errorf("body rewritten: %s", out)
				}
				return
			}
			if got := gjson.GetBytes(out, "error.type").Str; got != tt.wantType || gjson.GetBytes(out, "error.message").Str == "" {
				t.Errorf("body = %s", out)
			}
		})
	}
}

func TestStream(t *testing.T) {
	in := "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\n" +
		"data: [DONE]\n\n"
	for _, include := range []bool{true, false} {
		for _, split := range []int{1, 7, len(in)} {
			tr := newT(t, "k").NewStream(&provider.StreamInfo{IncludeUsage: include})
			var out []byte
			rest := []byte(in)
			for len(rest) > 0 {
				n := min(split, len(rest))
				var err error
				out, err = tr.Translate(out, rest[:n], false)
				if err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			out, _ = tr.Translate(out, nil, true)
			want := in
			if !include {
				want = strings.Replace(in, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\n", "", 1)
			}
			if string(out) != want {
				t.Errorf("include=%v split=%d:\n got %q\nwant %q", include, split, out, want)
			}
			if u := tr.Usage(); u.TotalTokens != 3 {
				t.Errorf("usage = %+v", u)
			}
		}
	}
}

func FuzzStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2}}\n\ndata: [DONE]\n\n"), uint8(3), false)
	f.Fuzz(func(t *testing.T, in []byte, split uint8, include bool) {
		tr := newT(t, "k").NewStream(&provider.StreamInfo{IncludeUsage: include})
		n := int(split)%32 + 1
		var out []byte
		for len(in) > 0 {
			k := min(n, len(in))
			var err error
			if out, err = tr.Translate(out[:0], in[:k], false); err != nil {
				return
			}
			in = in[k:]
		}
		_, _ = tr.Translate(out[:0], nil, true)
	})
}

func FuzzTranslateResponse(f *testing.F) {
	f.Add(200, []byte(`{"usage":{"prompt_tokens":1}}`))
	f.Add(500, []byte(`{"detail":"x"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		out, _, err := newT(t, "k").TranslateResponse(&provider.Response{Status: status, Body: body})
		if out != nil && !gjson.ValidBytes(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
		_ = err
	})
}

func BenchmarkTranslateRequest(b *testing.B) {
	tr := newT(b, "k")
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Model: "gpt-4o-mini", ClientModel: "gpt-4o-mini", Stream: true, Body: body})
	}
}
