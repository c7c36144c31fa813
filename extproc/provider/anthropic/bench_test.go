package anthropic

import (
	"testing"

	"github.com/weir-ai/weir/extproc/internal/benchtr"
	"github.com/weir-ai/weir/extproc/provider"
)

// benchReply is one Anthropic reply: text, then a tool call, with cache
// reads in its usage.
const benchReply = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"I'll check the weather for you in Paris right now."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","units":"c"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":50}}`

func BenchmarkTranslateRequest(b *testing.B) {
	body := benchtr.Read(b, "testdata/request/tools_auto.in.json")
	benchtr.Request(b, newTestTranslator(b), &provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: "claude-x"})
}

func BenchmarkTranslateResponse(b *testing.B) {
	benchtr.Response(b, newTestTranslator(b), &provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: []byte(benchReply), Model: "my-claude"})
}

// BenchmarkStream translates a whole tool-call stream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	benchtr.Stream(b, newTestTranslator(b), &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-claude", IncludeUsage: true},
		benchtr.Read(b, "testdata/stream/tool_call.in.sse"), 64)
}
