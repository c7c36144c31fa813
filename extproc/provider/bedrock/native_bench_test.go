package bedrock

import (
	"testing"

	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
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
	body := benchtr.Read(b, "testdata/request/tools.in.json")
	benchtr.Request(b, newTestTranslator(b), &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: InvokePrefix + benchInvokeModel})
}

func BenchmarkNativeRequest(b *testing.B) {
	tr := newTestTranslator(b)
	body := benchtr.Read(b, "testdata/request/tools.in.json")
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
	benchtr.Request(b, tr, &provider.Request{Endpoint: provider.EndpointMessages, Body: native, Model: benchInvokeModel, ClientModel: "my-claude", AnthropicBeta: "context-1m-2025-08-07"})
}

func BenchmarkNativeResponse(b *testing.B) {
	body := []byte(`{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-3-haiku-20240307","content":[{"type":"text","text":"I'll check the weather for you in Paris right now."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","units":"c"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":50}}`)
	benchtr.Response(b, newTestTranslator(b), &provider.Response{Endpoint: provider.EndpointMessages, Status: 200, Body: body, Model: "my-claude"})
}

// BenchmarkStreamInvoke translates the Anthropic tool-call stream of
// InvokeModelWithResponseStream to OpenAI chunks: the translated path of
// BenchmarkNativeStream's input.
func BenchmarkStreamInvoke(b *testing.B) {
	benchtr.Stream(b, newTestTranslator(b), &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-claude", IncludeUsage: true},
		readNativeStream(b, "testdata/native/stream/tool_call.in.json"), 64)
}

func BenchmarkNativeStream(b *testing.B) {
	benchtr.Stream(b, newTestTranslator(b), &provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "my-claude"},
		readNativeStream(b, "testdata/native/stream/tool_call.in.json"), 64)
}
