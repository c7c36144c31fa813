package gemini

import (
	"os"
	"testing"

	"github.com/weir-ai/weir/extproc/provider"
)

func readBench(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkTranslateRequest(b *testing.B) {
	tr := newTestTranslator(b)
	body := readBench(b, "testdata/request/tool_roundtrip.in.json")
	req := &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: "gemini-2.5-flash"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslateResponse(b *testing.B) {
	tr := newTestTranslator(b)
	body := []byte(`{"candidates":[{"content":{"parts":[{"text":"I'll check the weather for you in Paris right now."},{"functionCall":{"name":"get_weather","args":{"city":"Paris","units":"c"}},"thoughtSignature":"c2lnbmF0dXJl"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":2100,"cachedContentTokenCount":2000,"candidatesTokenCount":50,"thoughtsTokenCount":20,"totalTokenCount":2170},"modelVersion":"gemini-2.5-flash","responseId":"abc"}`)
	resp := &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "my-gemini"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream translates a whole text stream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	tr := newTestTranslator(b)
	in := readBench(b, "testdata/stream/text.in.sse")
	info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-gemini", IncludeUsage: true}
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
