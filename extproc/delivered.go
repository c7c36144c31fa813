package extproc

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/sse"
	"github.com/weir-ai/weir/extproc/tokens"
)

// delivered follows what a stream forwarded to the client, so that a
// stream which ends before the provider's final usage (the client left,
// the upstream cut it, or no usage event came) is billed at least for the
// text the client got.
//
// It reads the translated stream, which is OpenAI-shaped for every
// provider (chat and legacy completions chunks, or Responses API events),
// and keeps only the generated text: delta content, reasoning and refusal
// text, tool call names and arguments, and Responses "*.delta" strings.
// Counting those texts rather than the bytes forwarded matters: each
// chunk's JSON frame is 100 to 200 bytes around a delta of a few, so a
// byte count would bill several times what was delivered.
//
// The text is tokenized only when it is needed, at the end of an
// unfinished stream, so a complete stream pays for the JSON extraction
// alone. Text beyond flushBytes is counted and dropped as it comes, which
// bounds the memory a long stream holds; splitting the text there can only
// add a token or two.
type delivered struct {
	p        sse.Parser
	enc      tokens.Encoding
	text     []byte
	counted  int64 // tokens of text already flushed
	terminal bool  // [DONE] or a terminal Responses event was forwarded
}

const flushBytes = 64 << 10

func newDelivered(model string) *delivered {
	return &delivered{enc: tokens.EncodingFor(model)}
}

// feed reads one translated chunk.
func (d *delivered) feed(out []byte) {
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

func (d *delivered) event(data []byte) {
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
		// Responses API events.
		switch {
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

func (d *delivered) add(v gjson.Result) {
	if v.Type == gjson.String {
		d.text = append(d.text, v.Str...)
	}
}

func (d *delivered) flush() {
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

// tokens counts everything delivered so far.
func (d *delivered) tokens() int64 {
	d.flush()
	return d.counted
}
