package bedrock

import (
	"context"
	"os"
	"testing"

	"github.com/weir-ai/weir/extproc/provider"
)

// BenchmarkTranslateRequest includes SigV4 signing (cached credentials).
func BenchmarkTranslateRequest(b *testing.B) {
	tr := newTestTranslator(b)
	body, err := os.ReadFile("testdata/request/tools.in.json")
	if err != nil {
		b.Fatal(err)
	}
	req := &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: "anthropic.claude-3-haiku-20240307-v1:0"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
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
	resp := &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "m"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream translates a tool-call ConverseStream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	tr := newTestTranslator(b)
	in := readStream(b, "testdata/stream/tool_call.in.json")
	info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: true}
	dst := make([]byte, 0, 8<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s := tr.NewStream(info)
		dst = dst[:0]
		rest := in
		var err error
		for len(rest) > 64 {
			if dst, err = s.Translate(dst, rest[:64], false); err != nil {
				b.Fatal(err)
			}
			rest = rest[64:]
		}
		if dst, err = s.Translate(dst, rest, true); err != nil {
			b.Fatal(err)
		}
	}
}
