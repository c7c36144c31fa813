package bedrock

import (
	"os"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// The native benchmarks take the same content as the translated ones in
// Anthropic's format: the request is the Messages body the translated
// InvokeModel path sends for testdata/request/tools.in.json, as a client
// would send it; the response is BenchmarkTranslateResponse's reply as
// InvokeModel gives it; the stream is the Anthropic tool-call stream.

const benchInvokeModel = "anthropic.claude-3-haiku-20240307-v1:0"

// BenchmarkTranslateRequestInvoke is the translated path to the same
// operation as BenchmarkNativeRequest: OpenAI chat to InvokeModel.
func BenchmarkTranslateRequestInvoke(b *testing.B) {
	tr := newTestTranslator(b)
	body, err := os.ReadFile("testdata/request/tools.in.json")
	if err != nil {
		b.Fatal(err)
	}
	req := &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: InvokePrefix + benchInvokeModel}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNativeRequest(b *testing.B) {
	tr := newTestTranslator(b)
	body, err := os.ReadFile("testdata/request/tools.in.json")
	if err != nil {
		b.Fatal(err)
	}
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: InvokePrefix + benchInvokeModel})
	if err != nil {
		b.Fatal(err)
	}
	native, err := sjson.DeleteBytes(up.Body, "anthropic_version")
	if err == nil {
		native, err = sjson.SetBytes(native, "model", "my-claude")
	}
	if err != nil {
		b.Fatal(err)
	}
	req := &provider.Request{Endpoint: provider.EndpointMessages, Body: native, Model: benchInvokeModel, ClientModel: "my-claude", AnthropicBeta: "context-1m-2025-08-07"}
	b.ReportAllocs()
	b.SetBytes(int64(len(native)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNativeResponse(b *testing.B) {
	tr := newTestTranslator(b)
	body := []byte(`{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-3-haiku-20240307","content":[{"type":"text","text":"I'll check the weather for you in Paris right now."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","units":"c"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":50}}`)
	resp := &provider.Response{Endpoint: provider.EndpointMessages, Status: 200, Body: body, Model: "my-claude"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStream feeds in to a new stream in 64-byte chunks per iteration.
func benchStream(b *testing.B, in []byte, info *provider.StreamInfo) {
	tr := newTestTranslator(b)
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

// BenchmarkStreamInvoke translates the Anthropic tool-call stream of
// InvokeModelWithResponseStream to OpenAI chunks: the translated path of
// BenchmarkNativeStream's input.
func BenchmarkStreamInvoke(b *testing.B) {
	benchStream(b, readNativeStream(b, "testdata/native/stream/tool_call.in.json"),
		&provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-claude", IncludeUsage: true})
}

func BenchmarkNativeStream(b *testing.B) {
	benchStream(b, readNativeStream(b, "testdata/native/stream/tool_call.in.json"),
		&provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "my-claude"})
}
