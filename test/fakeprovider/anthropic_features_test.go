package fakeprovider

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAnthropicStopSequences: a reply that contains a stop sequence stops
// before it, with stop_reason stop_sequence and the sequence named, in
// replies and streams; max_tokens still wins when it cuts first.
func TestAnthropicStopSequences(t *testing.T) {
	for _, c := range []struct {
		name, body, text, stop string
		seq                    any
	}{
		{"earliest of two", `{"model":"m","max_tokens":100,"stop_sequences":["said","You"],"messages":[{"role":"user","content":"hello"}]}`,
			"Hello from fake-anthropic! ", "stop_sequence", "You"},
		{"absent sequence", `{"model":"m","max_tokens":100,"stop_sequences":["zzz"],"messages":[{"role":"user","content":"hello"}]}`,
			"Hello from fake-anthropic! You said: hello", "end_turn", nil},
		{"max_tokens cuts first", `{"model":"m","max_tokens":2,"stop_sequences":["said"],"messages":[{"role":"user","content":"hello"}]}`,
			"Hello from", "max_tokens", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, url := newTest(t, Anthropic)
			r := do(t, Anthropic, "POST", url+"/v1/messages", c.body, nil)
			m := r.json(t)
			if get(t, m, "content", 0, "text") != c.text || m["stop_reason"] != c.stop || m["stop_sequence"] != c.seq {
				t.Fatalf("reply %s", r.Body)
			}
			if n := get(t, m, "usage", "output_tokens").(float64); int(n) != words(c.text) {
				t.Errorf("output_tokens %v, want %d", n, words(c.text))
			}
			stream := do(t, Anthropic, "POST", url+"/v1/messages", strings.Replace(c.body, `{"model"`, `{"stream":true,"model"`, 1), nil)
			var text strings.Builder
			var delta map[string]any
			for _, ev := range parseSSE(t, stream.Body) {
				d := decodeJSON(t, ev.Data)
				switch ev.Name {
				case "content_block_delta":
					text.WriteString(get(t, d, "delta", "text").(string))
				case "message_delta":
					delta = d
				}
			}
			if text.String() != c.text || get(t, delta, "delta", "stop_reason") != c.stop || get(t, delta, "delta", "stop_sequence") != c.seq {
				t.Fatalf("stream %s", stream.Body)
			}
		})
	}
}

// TestAnthropicPromptCaching: the prefix up to the last cache_control
// breakpoint is written by the first request and read by the next with
// the same prefix; input_tokens is the rest, so the three add up to the
// counted prompt. cache-tokens overrides.
func TestAnthropicPromptCaching(t *testing.T) {
	s, url := newTest(t, Anthropic)
	usage := func(body string, hdr map[string]string) [3]float64 {
		t.Helper()
		m := do(t, Anthropic, "POST", url+"/v1/messages", body, hdr).json(t)
		u := get(t, m, "usage").(map[string]any)
		return [3]float64{u["input_tokens"].(float64), u["cache_creation_input_tokens"].(float64), u["cache_read_input_tokens"].(float64)}
	}
	sys := `"system":[{"type":"text","text":"a b c","cache_control":{"type":"ephemeral"}}]`
	first := `{"model":"m","max_tokens":100,` + sys + `,"messages":[{"role":"user","content":"hi"}]}`
	other := `{"model":"m","max_tokens":100,` + sys + `,"messages":[{"role":"user","content":"one two three"}]}`
	// prompt: system 3+3, message 3+1; the prefix is the system.
	if got := usage(first, nil); got != [3]float64{4, 6, 0} {
		t.Fatalf("first request: input, write, read = %v", got)
	}
	if got := usage(other, nil); got != [3]float64{6, 0, 6} {
		t.Fatalf("same prefix, other question: %v", got)
	}
	if got := usage(strings.Replace(first, `"model":"m"`, `"model":"n"`, 1), nil); got != [3]float64{4, 6, 0} {
		t.Fatalf("another model has its own cache: %v", got)
	}
	// A breakpoint on a message caches everything up to it.
	msgs := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"long doc here","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":"ok"},{"role":"user","content":"q"}]}`
	if got := usage(msgs, nil); got != [3]float64{8, 6, 0} {
		t.Fatalf("message breakpoint: %v", got)
	}
	if got := usage(first, map[string]string{BehaviorHeader: "cache-tokens=7,8"}); got != [3]float64{10, 8, 7} {
		t.Fatalf("cache-tokens wins: %v", got)
	}
	if got := usage(`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, nil); got != [3]float64{4, 0, 0} {
		t.Fatalf("no breakpoint: %v", got)
	}
	s.Reset()
	if got := usage(first, nil); got != [3]float64{4, 6, 0} {
		t.Fatalf("after Reset the prefix is written again: %v", got)
	}
}

// TestAnthropicThinking: thinking enabled returns a thinking block with a
// signature before the answer, counted in output_tokens; in a stream as
// thinking_delta and signature_delta events at index 0, the text at 1.
// The anthropic-beta header is recorded as sent.
func TestAnthropicThinking(t *testing.T) {
	s, url := newTest(t, Anthropic)
	body := `{"model":"m","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hello"}]}`
	r := do(t, Anthropic, "POST", url+"/v1/messages", body, map[string]string{"anthropic-beta": "interleaved-thinking-2025-05-14"})
	m := r.json(t)
	think := thinkingText("hello")
	if get(t, m, "content", 0, "type") != "thinking" || get(t, m, "content", 0, "thinking") != think ||
		get(t, m, "content", 0, "signature") != thinkingSignature(think) || get(t, m, "content", 1, "text") != "Hello from fake-anthropic! You said: hello" {
		t.Fatalf("reply %s", r.Body)
	}
	if n := get(t, m, "usage", "output_tokens").(float64); int(n) != 6+words(think) {
		t.Errorf("output_tokens %v", n)
	}
	if last, _ := s.Last(); last.Header.Get("anthropic-beta") != "interleaved-thinking-2025-05-14" {
		t.Errorf("anthropic-beta not recorded: %v", last.Header)
	}

	stream := do(t, Anthropic, "POST", url+"/v1/messages", strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1), nil)
	var thinking, sig, text strings.Builder
	for _, ev := range parseSSE(t, stream.Body) {
		if ev.Name != "content_block_delta" {
			continue
		}
		var d struct {
			Index int
			Delta struct{ Type, Thinking, Signature, Text string }
		}
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Index == 0 && d.Delta.Type == "thinking_delta":
			thinking.WriteString(d.Delta.Thinking)
		case d.Index == 0 && d.Delta.Type == "signature_delta":
			sig.WriteString(d.Delta.Signature)
		case d.Index == 1 && d.Delta.Type == "text_delta":
			text.WriteString(d.Delta.Text)
		default:
			t.Fatalf("unexpected delta %s", ev.Data)
		}
	}
	if thinking.String() != think || sig.String() != thinkingSignature(think) || text.String() != "Hello from fake-anthropic! You said: hello" {
		t.Fatalf("stream %s", stream.Body)
	}

	for _, bad := range []string{
		`{"model":"m","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":100},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":1024,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":2048,"thinking":{"type":"sometimes"},"messages":[{"role":"user","content":"hi"}]}`,
	} {
		if r := do(t, Anthropic, "POST", url+"/v1/messages", bad, nil); r.Status != 400 {
			t.Errorf("%s: status %d, want 400", bad, r.Status)
		}
	}
	if r := do(t, Anthropic, "POST", url+"/v1/messages", `{"model":"m","max_tokens":10,"thinking":{"type":"disabled"},"messages":[{"role":"user","content":"hi"}]}`, nil); r.Status != 200 || strings.Contains(string(r.Body), `"thinking"`) {
		t.Errorf("disabled thinking: %d %s", r.Status, r.Body)
	}
}
