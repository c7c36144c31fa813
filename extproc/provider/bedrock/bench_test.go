package bedrock

import (
	"context"
	"testing"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
	"github.com/weir-ai/weir/extproc/provider"
)

// BenchmarkTranslateRequest includes SigV4 signing (cached credentials).
func BenchmarkTranslateRequest(b *testing.B) {
	body := benchtr.Read(b, "testdata/request/tools.in.json")
	benchtr.Request(b, newTestTranslator(b), &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: "anthropic.claude-3-haiku-20240307-v1:0"})
}

// BenchmarkSign is the signing step alone.
func BenchmarkSign(b *testing.B) {
	tr := newTestTranslator(b)
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	esc, raw := modelPath("amazon.nova-lite-v1:0", "converse")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.sign(context.Background(), esc, raw, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslateResponse(b *testing.B) {
	tr := newTestTranslator(b)
	body := []byte(`{"output":{"message":{"role":"assistant","content":[{"text":"I'll check the weather for you in Paris right now."},{"toolUse":{"toolUseId":"tooluse_01A","name":"get_weather","input":{"city":"Paris","units":"c"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":100,"outputTokens":50,"totalTokens":2150,"cacheReadInputTokens":2000},"metrics":{"latencyMs":321}}`)
	benchtr.Response(b, tr, &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "m"})
}

// BenchmarkStream translates a tool-call ConverseStream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	benchtr.Stream(b, newTestTranslator(b), &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: true},
		readStream(b, "testdata/stream/tool_call.in.json"), 64)
}
