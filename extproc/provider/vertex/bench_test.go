package vertex

import (
	"context"
	"testing"

	"golang.org/x/oauth2"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
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
	tr := newKeyless(b)
	withToken(b, tr)
	benchtr.Request(b, tr, &provider.Request{Endpoint: ep, Body: benchtr.Read(b, file)})
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
	body := benchtr.Read(b, "testdata/response/claude_tool_use.in.json")
	benchtr.Response(b, newKeyless(b), &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "m"})
}

// BenchmarkStreamClaude translates a whole rawPredict stream in one chunk.
func BenchmarkStreamClaude(b *testing.B) {
	in := benchtr.Read(b, "testdata/stream/claude_text.in.sse")
	benchtr.Stream(b, newKeyless(b), &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: true, RequestID: "r"}, in, len(in))
}
