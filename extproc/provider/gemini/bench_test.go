package gemini

import (
	"testing"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
	"github.com/weir-ai/weir/extproc/provider"
)

func BenchmarkTranslateRequest(b *testing.B) {
	body := benchtr.Read(b, "testdata/request/tool_roundtrip.in.json")
	benchtr.Request(b, newTestTranslator(b), &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: "gemini-2.5-flash"})
}

func BenchmarkTranslateResponse(b *testing.B) {
	body := []byte(`{"candidates":[{"content":{"parts":[{"text":"I'll check the weather for you in Paris right now."},{"functionCall":{"name":"get_weather","args":{"city":"Paris","units":"c"}},"thoughtSignature":"c2lnbmF0dXJl"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":2100,"cachedContentTokenCount":2000,"candidatesTokenCount":50,"thoughtsTokenCount":20,"totalTokenCount":2170},"modelVersion":"gemini-2.5-flash","responseId":"abc"}`)
	benchtr.Response(b, newTestTranslator(b), &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "my-gemini"})
}

// BenchmarkStream translates a whole text stream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	benchtr.Stream(b, newTestTranslator(b), &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-gemini", IncludeUsage: true},
		benchtr.Read(b, "testdata/stream/text.in.sse"), 64)
}
