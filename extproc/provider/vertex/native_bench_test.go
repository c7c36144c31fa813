package vertex

import (
	"os"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// The native benchmarks take the content of BenchmarkTranslateRequestClaude,
// BenchmarkTranslateResponseClaude and BenchmarkStreamClaude in Anthropic's
// format: the request is the Messages body the translated path sends
// upstream, as a client would send it.

func BenchmarkNativeRequest(b *testing.B) {
	body, err := os.ReadFile("testdata/request/claude_chat.in.json")
	if err != nil {
		b.Fatal(err)
	}
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
	req := &provider.Request{Endpoint: provider.EndpointMessages, Body: native, Model: "claude-sonnet-4-5@20250929", ClientModel: "my-claude"}
	b.ReportAllocs()
	b.SetBytes(int64(len(native)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNativeResponse(b *testing.B) {
	body, err := os.ReadFile("testdata/response/claude_tool_use.in.json")
	if err != nil {
		b.Fatal(err)
	}
	tr := newKeyless(b)
	resp := &provider.Response{Endpoint: provider.EndpointMessages, Status: 200, Body: body, Model: "m"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNativeStream(b *testing.B) {
	in, err := os.ReadFile("testdata/stream/claude_text.in.sse")
	if err != nil {
		b.Fatal(err)
	}
	tr := newKeyless(b)
	info := &provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "m", RequestID: "r"}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	var dst []byte
	for b.Loop() {
		s := tr.NewStream(info)
		dst, _ = s.Translate(dst[:0], in, true)
	}
}
