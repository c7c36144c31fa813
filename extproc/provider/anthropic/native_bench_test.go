package anthropic

import (
	"testing"

	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
	"github.com/weir-ai/weir/extproc/provider"
)

// The native benchmarks take the same content as BenchmarkTranslateRequest,
// BenchmarkTranslateResponse and BenchmarkStream, in Anthropic's format:
// the request is the Messages body the translated path sends upstream,
// as a client would send it under an alias.

func BenchmarkNativeRequest(b *testing.B) {
	tr := newTestTranslator(b)
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: benchtr.Read(b, "testdata/request/tools_auto.in.json"), Model: "claude-x"})
	if err != nil {
		b.Fatal(err)
	}
	body, err := sjson.SetBytes(up.Body, "model", "my-claude")
	if err != nil {
		b.Fatal(err)
	}
	benchtr.Request(b, tr, &provider.Request{Endpoint: provider.EndpointMessages, Body: body, Model: "claude-x", ClientModel: "my-claude", AnthropicBeta: "context-1m-2025-08-07"})
}

func BenchmarkNativeResponse(b *testing.B) {
	benchtr.Response(b, newTestTranslator(b), &provider.Response{Endpoint: provider.EndpointMessages, Status: 200, Body: []byte(benchReply), Model: "my-claude"})
}

// BenchmarkNativeStream passes the tool-call stream through in 64-byte
// chunks.
func BenchmarkNativeStream(b *testing.B) {
	benchtr.Stream(b, newTestTranslator(b), &provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "my-claude"},
		benchtr.Read(b, "testdata/stream/tool_call.in.sse"), 64)
}
