package anthropic

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
	body := readBench(b, "testdata/request/tools_auto.in.json")
	req := &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: "claude-x"}
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
	body := []byte(`{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"I'll check the weather for you in Paris right now."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","units":"c"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":50}}`)
	resp := &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: body, Model: "my-claude"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream translates a whole tool-call stream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	tr := newTestTranslator(b)
	in := readBench(b, "testdata/stream/tool_call.in.sse")
	info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-claude", IncludeUsage: true}
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
