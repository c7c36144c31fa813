package vertex

import (
	"testing"

	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
	"github.com/weir-ai/weir/extproc/provider"
)

// The native benchmarks take the content of BenchmarkTranslateRequestClaude,
// BenchmarkTranslateResponseClaude and BenchmarkStreamClaude in Anthropic's
// format: the request is the Messages body the translated path sends
// upstream, as a client would send it.

func BenchmarkNativeRequest(b *testing.B) {
	body := benchtr.Read(b, "testdata/request/claude_chat.in.json")
	tr := newKeyless(b)
	withToken(b, tr)
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: body})
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
	benchtr.Request(b, tr, &provider.Request{Endpoint: provider.EndpointMessages, Body: native, Model: "claude-sonnet-4-5@20250929", ClientModel: "my-claude"})
}

func BenchmarkNativeResponse(b *testing.B) {
	body := benchtr.Read(b, "testdata/response/claude_tool_use.in.json")
	benchtr.Response(b, newKeyless(b), &provider.Response{Endpoint: provider.EndpointMessages, Status: 200, Body: body, Model: "m"})
}

// BenchmarkNativeStream passes a whole rawPredict stream through in one
// chunk.
func BenchmarkNativeStream(b *testing.B) {
	in := benchtr.Read(b, "testdata/stream/claude_text.in.sse")
	benchtr.Stream(b, newKeyless(b), &provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "m", RequestID: "r"}, in, len(in))
}
