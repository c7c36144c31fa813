package openai

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/sse"
)

// Chunks writes one stream's chat.completion.chunk events, for
// translators of other formats' streams: the role chunk first, a chunk a
// delta, then the usage chunk if the client asked for it and [DONE].
// Between [Chunks.Open] and [Chunks.Emit] the translator appends the
// delta object to Buf.
type Chunks struct {
	Model, RequestID string
	Created          int64 // Unix seconds, the same on every chunk

	Buf    []byte // scratch for one chunk
	prefix []byte // chunk JSON up to and including `"choices":`

	IncludeUsage bool
	Started      bool // prefix built, role chunk sent
	Finished     bool // a finish_reason was sent
	Done         bool // [DONE] sent; later input is ignored
}

// Begin builds the chunk prefix and sends the role chunk, once. id is the
// upstream's response id if it sent one; bare ids (Gemini's) get the
// chatcmpl- prefix, and without one the id is chatcmpl-<request id>.
func (c *Chunks) Begin(dst []byte, id gjson.Result, bare bool) []byte {
	if c.Started {
		return dst
	}
	c.Started = true
	c.prefix = append(c.prefix[:0], `{"id":`...)
	switch body := jsonw.RawStringBody(id); {
	case body != "" && !bare:
		c.prefix = append(c.prefix, id.Raw...)
	case body != "":
		c.prefix = append(c.prefix, `"chatcmpl-`...)
		c.prefix = append(c.prefix, body...)
		c.prefix = append(c.prefix, '"')
	default:
		c.prefix = append(c.prefix, `"chatcmpl-`...)
		k := len(c.prefix)
		c.prefix = jsonw.AppendString(c.prefix, c.RequestID)
		c.prefix = append(c.prefix[:k], c.prefix[k+1:]...) // the string's opening quote
	}
	c.prefix = append(c.prefix, `,"object":"chat.completion.chunk","created":`...)
	c.prefix = strconv.AppendInt(c.prefix, c.Created, 10)
	c.prefix = append(c.prefix, `,"model":`...)
	c.prefix = jsonw.AppendString(c.prefix, c.Model)
	c.prefix = append(c.prefix, `,"choices":`...)
	c.Open()
	c.Buf = append(c.Buf, `{"role":"assistant","content":""}`...)
	return c.Emit(dst, "")
}

// Open starts a chunk in Buf, up to the delta object.
func (c *Chunks) Open() {
	c.Buf = append(c.Buf[:0], c.prefix...)
	c.Buf = append(c.Buf, `[{"index":0,"delta":`...)
}

// Emit ends the chunk in Buf with finish_reason ("" for null) and appends
// it to dst.
func (c *Chunks) Emit(dst []byte, finish string) []byte {
	c.Buf = append(c.Buf, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		c.Buf = append(c.Buf, "null"...)
	} else {
		c.Buf = append(c.Buf, '"')
		c.Buf = append(c.Buf, finish...)
		c.Buf = append(c.Buf, '"')
	}
	c.Buf = append(c.Buf, `}]}`...)
	return sse.AppendEvent(dst, "", c.Buf)
}

// Delta appends a chunk whose delta is {"<key>":<str>}, for a non-empty
// JSON string str.
func (c *Chunks) Delta(dst []byte, key string, str gjson.Result) []byte {
	if str.Type != gjson.String || str.Str == "" {
		return dst
	}
	dst = c.Begin(dst, gjson.Result{}, false)
	c.Open()
	c.Buf = append(c.Buf, `{"`...)
	c.Buf = append(c.Buf, key...)
	c.Buf = append(c.Buf, `":`...)
	c.Buf = jsonw.AppendRawString(c.Buf, str)
	c.Buf = append(c.Buf, '}')
	return c.Emit(dst, "")
}

// Stop ends the stream: the usage chunk, written by usage, if the client
// asked for it, then [DONE].
func (c *Chunks) Stop(dst []byte, usage func(out []byte) []byte) []byte {
	c.Done = true
	if c.IncludeUsage && c.Started {
		c.Buf = append(c.Buf[:0], c.prefix...)
		c.Buf = append(c.Buf, `[],"usage":`...)
		c.Buf = usage(c.Buf)
		c.Buf = append(c.Buf, '}')
		dst = sse.AppendEvent(dst, "", c.Buf)
	}
	return append(dst, sse.Done...)
}

// End finishes a stream whose upstream stopped: normally if the finish
// reason was sent (only the upstream's own end marker is missing), else
// with an error event, so that no client takes a truncated answer for a
// complete one.
func (c *Chunks) End(dst []byte, usage func(out []byte) []byte) []byte {
	if c.Finished {
		return c.Stop(dst, usage)
	}
	return c.Fail(dst, errs.Encode("upstream stream ended before the response was complete", "server_error", "stream_truncated"))
}

// Fail ends the stream with an error event carrying body, then [DONE].
func (c *Chunks) Fail(dst, body []byte) []byte {
	c.Done = true
	dst = sse.AppendEvent(dst, "", body)
	return append(dst, sse.Done...)
}

// ToolChunks is [Chunks] for upstreams that stream a tool call's
// arguments in pieces, in numbered content blocks (Anthropic, Converse).
type ToolChunks struct {
	Chunks
	tools []toolBlock
}

// toolBlock maps an upstream content block index to an OpenAI tool call
// index.
type toolBlock struct {
	block int64
	tool  int
}

// ToolStart appends the chunk that starts a tool call (id and name are
// JSON strings, arguments come in [ToolChunks.ToolArgs]) for the upstream's
// content block block.
func (c *ToolChunks) ToolStart(dst []byte, block int64, id, name gjson.Result) []byte {
	dst = c.Begin(dst, gjson.Result{}, false)
	tool := len(c.tools)
	c.tools = append(c.tools, toolBlock{block: block, tool: tool})
	c.Open()
	c.Buf = append(c.Buf, `{"tool_calls":[{"index":`...)
	c.Buf = strconv.AppendInt(c.Buf, int64(tool), 10)
	c.Buf = append(c.Buf, `,"id":`...)
	c.Buf = jsonw.AppendRawString(c.Buf, id)
	c.Buf = append(c.Buf, `,"type":"function","function":{"name":`...)
	c.Buf = jsonw.AppendRawString(c.Buf, name)
	c.Buf = append(c.Buf, `,"arguments":""}}]}`...)
	return c.Emit(dst, "")
}

// ToolArgs appends a chunk of arguments (a non-empty JSON string) for the
// tool call started for block; a block that did not start one is ignored.
func (c *ToolChunks) ToolArgs(dst []byte, block int64, partial gjson.Result) []byte {
	if partial.Type != gjson.String || partial.Str == "" {
		return dst
	}
	tool := -1
	for i := len(c.tools) - 1; i >= 0; i-- {
		if c.tools[i].block == block {
			tool = c.tools[i].tool
			break
		}
	}
	if tool < 0 {
		return dst
	}
	c.Open()
	c.Buf = append(c.Buf, `{"tool_calls":[{"index":`...)
	c.Buf = strconv.AppendInt(c.Buf, int64(tool), 10)
	c.Buf = append(c.Buf, `,"function":{"arguments":`...)
	c.Buf = jsonw.AppendRawString(c.Buf, partial)
	c.Buf = append(c.Buf, `}}]}`...)
	return c.Emit(dst, "")
}

// Pump feeds an upstream SSE chunk to p and hands each event to event
// until the stream is done. At the end of input it flushes p and, if the
// events did not end the stream, ends it ([Chunks.End]).
func (c *Chunks) Pump(dst []byte, p *sse.Parser, chunk []byte, eos bool, event func(dst []byte, ev sse.Event) []byte, usage func(out []byte) []byte) ([]byte, error) {
	if c.Done {
		return dst, nil
	}
	if err := p.Feed(chunk); err != nil {
		return dst, fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err)
	}
	for !c.Done {
		ev, ok := p.Next()
		if !ok {
			break
		}
		dst = event(dst, ev)
	}
	if eos && !c.Done {
		if ev, ok := p.Flush(); ok {
			dst = event(dst, ev)
		}
		if !c.Done {
			dst = c.End(dst, usage)
		}
	}
	return dst, nil
}
