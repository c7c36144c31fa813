package anthropic

import (
	"testing"

	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// The native benchmarks take the same content as BenchmarkTranslateRequest,
// BenchmarkTranslateResponse and BenchmarkStream, in Anthropic's format:
// the request is the Messages body the translated path sends upstream,
// as a client would send it under an alias.

func BenchmarkNativeRequest(b *testing.B) {
	tr := newTestTranslator(b)
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: readBench(b, "testdata/request/tools_auto.in.json"), Model: "claude-x"})
	if err != nil {
		b.Fatal(err)
	}
	body, err := sjson.SetBytes(up.Body, "model", "my-claude")
	if err != nil {
		b.Fatal(err)
	}
	req := &provider.Request{Endpoint: provider.EndpointMessages, Body: body, Model: "claude-x", ClientModel: "my-claude", AnthropicBeta: "context-1m-2025-08-07"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNativeResponse(b *testing.B) {
	tr := newTestTranslator(b)
	body := []byte(`{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"I'll check the weather for you in Paris right now."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","units":"c"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":50}}`)
	resp := &provider.Response{Endpoint: provider.EndpointMessages, Status: 200, Body: body, Model: "my-claude"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNativeStream passes the tool-call stream through in 64-byte
// chunks.
func BenchmarkNativeStream(b *testing.B) {
	tr := newTestTranslator(b)
	in := readBench(b, "testdata/stream/tool_call.in.sse")
	info := &provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "my-claude"}
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
