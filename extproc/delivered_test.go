package extproc

import (
	"os"
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
			d := newDelivered("gpt-4o-mini")
			for _, c := range tt.chunks {
				d.feed([]byte(c))
			}
			want := int64(o200k.Count(tt.text))
			got := d.tokens()
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

// TestPartialPromptIsTokenized: a stream that ended without the provider's
// usage bills its prompt at the smaller of the reservation's estimate
// (text bytes) and the BPE count of the body, never zero.
func TestPartialPromptIsTokenized(t *testing.T) {
	s := New(Options{})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("tell me a long story about the sea. ", 20) + `"}]}`)
	tests := []struct {
		name     string
		reserved int64 // the ticket's prompt estimate
		wantMax  int64
	}{
		{"byte estimate", int64(len(body)), int64(len(body)) / 2},
		{"small estimate wins", 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &routerStream{s: s, rt: s.Runtime()}
			r.req.Body = body
			r.req.Target.UpstreamModel = "gpt-4o-mini"
			r.req.Ticket.Prompt = tt.reserved
			r.dv = newDelivered("gpt-4o-mini")
			u, partial := r.settledUsage()
			if !partial || u.PromptTokens <= 0 || u.PromptTokens > tt.wantMax {
				t.Errorf("partial %v, prompt %d; want (0, %d]", partial, u.PromptTokens, tt.wantMax)
			}
		})
	}
}
