// Package delivered follows what a stream forwarded to the client, so
// that a stream which ends before the provider's final usage is billed at
// least for the text the client got.
package delivered

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/sse"
	"github.com/weir-ai/weir/extproc/tokens"
)

// Text follows what a stream forwarded to the client, so that a stream
// which ends before the provider's final usage (the client left, the
// upstream cut it, or no usage event came) is billed at least for the text
// the client got.
//
// It reads the stream as the client received it, in the client's format:
// OpenAI chat and legacy completions chunks, Responses API events, or
// Anthropic Messages events. It keeps only the generated text: delta
// content, reasoning and refusal text, tool call names and arguments,
// Responses "*.delta" strings, and Anthropic text, thinking and tool input
// deltas.
// Counting those texts rather than the bytes forwarded matters: each
// chunk's JSON frame is 100 to 200 bytes around a delta of a few, so a
// byte count would bill several times what was delivered.
//
// The text is tokenized only when it is needed, at the end of an
// unfinished stream, so a complete stream pays for the JSON extraction
// alone. Text beyond flushBytes is counted and dropped as it comes, which
// bounds the memory a long stream holds; splitting the text there can only
// add a token or two.
type Text struct {
	p       sse.Parser
	enc     tokens.Encoding
	text    []byte
	counted int64 // tokens of text already flushed
	// terminal: [DONE], a terminal Responses event or Anthropic's
	// message_stop was forwarded.
	terminal bool
}

const flushBytes = 64 << 10

// New follows a stream of model's reply; model picks the tokenizer.
func New(model string) *Text {
	return &Text{enc: tokens.EncodingFor(model)}
}

// Feed reads one chunk as the client received it.
func (d *Text) Feed(out []byte) {
	if len(out) == 0 {
		return
	}
	if err := d.p.Feed(out); err != nil {
		// An event too large to buffer: every BPE token covers at least
		// one byte, so its bytes bound its tokens.
		d.counted += int64(len(d.p.Pending()) + len(out))
		d.p = sse.Parser{}
		return
	}
	for {
		ev, ok := d.p.Next()
		if !ok {
			break
		}
		d.event(ev.Data)
	}
	if len(d.text) >= flushBytes {
		d.flush()
	}
}

var doneData = []byte("[DONE]")

func (d *Text) event(data []byte) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return
	}
	if bytes.Equal(data, doneData) {
		d.terminal = true
		return
	}
	if data[0] != '{' {
		return
	}
	v := gjson.ParseBytes(data)
	if typ := v.Get("type").Str; typ != "" {
		// Responses API events, and Anthropic's.
		switch {
		case typ == "content_block_delta":
			delta := v.Get("delta")
			d.add(delta.Get("text"))
			d.add(delta.Get("thinking"))
			d.add(delta.Get("partial_json"))
		case typ == "content_block_start":
			// A tool_use block names its tool here.
			d.add(v.Get("content_block.name"))
		case typ == "message_stop":
			d.terminal = true
		case strings.HasSuffix(typ, ".delta"):
			if x := v.Get("delta"); x.Type == gjson.String {
				d.text = append(d.text, x.Str...)
			}
		case typ == "response.completed" || typ == "response.incomplete" || typ == "response.failed":
			d.terminal = true
		}
		return
	}
	v.Get("choices").ForEach(func(_, c gjson.Result) bool {
		d.add(c.Get("text")) // legacy completions
		delta := c.Get("delta")
		if !delta.Exists() {
			return true
		}
		d.add(delta.Get("content"))
		d.add(delta.Get("reasoning_content"))
		d.add(delta.Get("refusal"))
		delta.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
			d.add(tc.Get("function.name"))
			d.add(tc.Get("function.arguments"))
			return true
		})
		return true
	})
}

func (d *Text) add(v gjson.Result) {
	if v.Type == gjson.String {
		d.text = append(d.text, v.Str...)
	}
}

func (d *Text) flush() {
	if len(d.text) == 0 {
		return
	}
	if t, err := tokens.Get(d.enc); err == nil {
		d.counted += int64(t.Count(string(d.text)))
	} else {
		d.counted += int64(len(d.text))
	}
	d.text = d.text[:0]
}

// Terminal reports whether the stream's terminal event reached the
// client: the stream is complete.
func (d *Text) Terminal() bool { return d.terminal }

// Tokens counts everything delivered so far.
func (d *Text) Tokens() int64 {
	d.flush()
	return d.counted
}
