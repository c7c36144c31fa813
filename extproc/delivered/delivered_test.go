package delivered

import (
	"strings"
	"testing"

	"github.com/weir-ai/weir/extproc/tokens"
)

func TestDelivered(t *testing.T) {
	o200k := tokens.Must(tokens.O200kBase)
	tests := []struct {
		name     string
		chunks   []string
		text     string // the generated text the chunks carry
		terminal bool
	}{
		{
			name: "chat deltas split across chunks",
			chunks: []string{
				`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}` + "\n\n" + `data: {"choices":[{"index":0,"del`,
				`ta":{"content":", world"}}]}` + "\n\n",
			},
			text: "Hello, world",
		},
		{
			name: "tool call name and arguments, then [DONE]",
			chunks: []string{
				`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":""}}]}}]}` + "\n\n",
				`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]}}]}` + "\n\n",
				`data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9}}` + "\n\ndata: [DONE]\n\n",
			},
			text:     `get_weather{"city":"Paris"}`,
			terminal: true,
		},
		{
			name:   "legacy completions and reasoning",
			chunks: []string{`data: {"choices":[{"text":"one two"},{"delta":{"reasoning_content":" three"}}]}` + "\r\n\r\n"},
			text:   "one two three",
		},
		{
			name: "responses API events",
			chunks: []string{
				"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Bonjour\"}\n\n",
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":1}}}\n\n",
			},
			text:     "Bonjour",
			terminal: true,
		},
		{
			name: "anthropic text, thinking and tool input deltas",
			chunks: []string{
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me see.\"}}\n\n",
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\" Sunny\"}}\n\n",
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Paris\\\"}\"}}\n\n",
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			},
			text:     `Let me see. Sunnyget_weather{"city": "Paris"}`,
			terminal: true,
		},
		{
			name:   "an anthropic stream without message_stop is not terminal",
			chunks: []string{"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"},
			text:   "Hi",
		},
		{
			name:   "an unfinished event is not counted",
			chunks: []string{`data: {"choices":[{"delta":{"content":"partial"}}]}`},
		},
		{
			name:   "a long stream is counted in pieces",
			chunks: repeatChunk(`data: {"choices":[{"delta":{"content":"lorem ipsum dolor "}}]}`+"\n\n", 8000),
			text:   strings.Repeat("lorem ipsum dolor ", 8000),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New("gpt-4o-mini")
			for _, c := range tt.chunks {
				d.Feed([]byte(c))
			}
			want := int64(o200k.Count(tt.text))
			got := d.Tokens()
			// Counting a long text in 64 KiB pieces may split a word in
			// two at each boundary (at most two more tokens), never lose
			// one.
			slack := 2 * int64(len(tt.text)/flushBytes)
			if got < want || got > want+slack {
				t.Errorf("tokens = %d, want %d (+%d)", got, want, slack)
			}
			if d.terminal != tt.terminal {
				t.Errorf("terminal = %v, want %v", d.terminal, tt.terminal)
			}
		})
	}
}

func repeatChunk(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
