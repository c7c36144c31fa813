package vertex

import (
	"context"
	"os"
	"testing"

	"golang.org/x/oauth2"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/oauthcache"
)

// withToken gives tr a token cache that already holds a token.
func withToken(b *testing.B, tr *translator) {
	c, err := oauthcache.New(oauthcache.Options{Fetch: func(context.Context) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: "ya29.bench", ExpiresIn: 3600}, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	for {
		if _, err := c.Header(context.Background()); err == nil {
			break
		}
	}
	tr.tokens = c
}

func benchRequest(b *testing.B, file string, ep provider.Endpoint) {
	body, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	tr := newKeyless(b)
	withToken(b, tr)
	req := &provider.Request{Endpoint: ep, Body: body}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslateRequestGemini(b *testing.B) {
	benchRequest(b, "testdata/request/gemini_chat.in.json", provider.EndpointChat)
}

func BenchmarkTranslateRequestClaude(b *testing.B) {
	benchRequest(b, "testdata/request/claude_chat.in.json", provider.EndpointChat)
}

func BenchmarkTranslateRequestEmbeddings(b *testing.B) {
	benchRequest(b, "testdata/request/emb_array.in.json", provider.EndpointEmbeddings)
}

func BenchmarkTranslateResponseClaude(b *testing.B) {
	body, err := os.ReadFile("testdata/response/claude_tool_use.in.json")
	if err != nil {
		b.Fatal(err)
	}
	tr := newKeyless(b)
	resp := &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "m"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamClaude(b *testing.B) {
	in, err := os.ReadFile("testdata/stream/claude_text.in.sse")
	if err != nil {
		b.Fatal(err)
	}
	tr := newKeyless(b)
	info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: true, RequestID: "r"}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	var dst []byte
	for b.Loop() {
		s := tr.NewStream(info)
		dst, _ = s.Translate(dst[:0], in, true)
	}
}
