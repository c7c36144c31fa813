package anthropic

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
	"github.com/weir-ai/weir/extproc/sse"
)

// Stream translates an OpenAI chat.completion.chunk SSE stream into
// Anthropic's event stream, incrementally: chunks may split events
// anywhere and the output does not depend on where.
//
// The output follows Anthropic's documented event flow:
//
//	message_start
//	(content_block_start, content_block_delta*, content_block_stop)*
//	message_delta
//	message_stop
//
// Blocks: delta.content (and delta.refusal) go to a text block, each tool
// call to a tool_use block whose input arrives as input_json_delta. A new
// block opens whenever the kind or the tool call index changes, so text,
// then tool 0, then tool 1 give blocks 0, 1, 2. A tool call index that
// comes back after its block was closed (interleaved arguments, which no
// known backend sends) cannot be expressed and ends the stream with an
// error event.
//
// Ending: OpenAI sends the finish_reason chunk, then the usage chunk,
// then [DONE], so message_delta (stop_reason and usage) and message_stop
// are written at [DONE], or at end of input if the finish reason was seen.
// An in-stream OpenAI error ({"error":{…}}) becomes an "error" event, and
// so does a stream that ends, with or without [DONE], before any
// finish_reason: the SDK raises an error instead of taking a truncated
// answer for a complete one. Nothing is written after the final event.
type Stream struct {
	p            sse.Parser
	model, reqID string
	seed         string // for tool call ids the upstream omits
	buf          []byte // scratch for one event's data

	usage  provider.Usage
	finish string // OpenAI finish_reason, once seen

	index     int   // Anthropic index of the open block; blocks = index+1
	open      uint8 // kind of the open block: blockNone, blockText, blockTool
	tool      int64 // OpenAI tool call index of the open tool block
	toolsSeen []int64
	started   bool // message_start sent
	done      bool // final event sent; later input is ignored
}

const (
	blockNone uint8 = iota
	blockText
	blockTool
)

func newStream(model, requestID string) *Stream {
	return &Stream{model: model, reqID: requestID, index: -1}
}

// Usage returns the usage from the stream's usage chunk, in OpenAI terms.
func (s *Stream) Usage() provider.Usage { return s.usage }

// Translate consumes a chunk of OpenAI SSE and appends Anthropic SSE.
func (s *Stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	if s.done {
		return dst, nil
	}
	if err := s.p.Feed(chunk); err != nil {
		return dst, fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err)
	}
	for !s.done {
		ev, ok := s.p.Next()
		if !ok {
			break
		}
		dst = s.event(dst, ev.Data)
	}
	if eos && !s.done {
		if ev, ok := s.p.Flush(); ok {
			dst = s.event(dst, ev.Data)
		}
		if !s.done {
			dst = s.end(dst)
		}
	}
	return dst, nil
}

var (
	doneData    = []byte("[DONE]")
	messageStop = []byte(`{"type":"message_stop"}`)
)

func (s *Stream) event(dst, data []byte) []byte {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return dst
	}
	if bytes.Equal(data, doneData) {
		return s.end(dst)
	}
	js := jsonw.View(data)
	if !gjson.Valid(js) {
		return dst // not JSON: nothing to translate; OpenAI sends none
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return dst
	}
	var id, choices, usage, upErr gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			upErr = v
		}
		return true
	})
	if jsonw.Present(upErr) {
		e := upErr
		if !e.IsObject() {
			// {"error":"text"}
			return s.fail(dst, "api_error", e, "upstream stream error")
		}
		return s.fail(dst, streamErrorType(e.Get("type").Str, e.Get("code").String()), e.Get("message"), "upstream stream error")
	}
	dst = s.begin(dst, id)
	if usage.IsObject() {
		s.usage = openai.ParseUsage(usage)
	}
	choices.ForEach(func(_, c gjson.Result) bool {
		if c.Get("index").Int() != 0 {
			return true // Weir never asks for n > 1
		}
		var delta, finish gjson.Result
		c.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "delta":
				delta = v
			case "finish_reason":
				finish = v
			}
			return true
		})
		dst = s.delta(dst, delta)
		if !s.done && jsonw.IsNonEmptyString(finish) && s.finish == "" {
			s.finish = finish.Str
			dst = s.closeBlock(dst)
		}
		return !s.done
	})
	return dst
}

func (s *Stream) delta(dst []byte, d gjson.Result) []byte {
	var content, refusal, calls gjson.Result
	d.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content":
			content = v
		case "refusal":
			refusal = v
		case "tool_calls":
			calls = v
		}
		return true
	})
	dst = s.text(dst, content)
	dst = s.text(dst, refusal)
	i := int64(0)
	calls.ForEach(func(_, c gjson.Result) bool {
		idx := i
		if x := c.Get("index"); x.Type == gjson.Number {
			idx = x.Int()
		}
		dst = s.toolCall(dst, idx, c)
		i++
		return !s.done
	})
	return dst
}

// begin sends message_start, once.
func (s *Stream) begin(dst []byte, id gjson.Result) []byte {
	if s.started {
		return dst
	}
	s.started = true
	s.seed = idSeed(id, s.reqID)
	s.buf = append(s.buf[:0], `{"type":"message_start","message":{"id":`...)
	s.buf = appendMessageID(s.buf, id, s.reqID)
	s.buf = append(s.buf, `,"type":"message","role":"assistant","model":`...)
	s.buf = jsonw.AppendString(s.buf, s.model)
	s.buf = append(s.buf, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`...)
	return sse.AppendEvent(dst, "message_start", s.buf)
}

func (s *Stream) text(dst []byte, t gjson.Result) []byte {
	if !jsonw.IsNonEmptyString(t) {
		return dst
	}
	if s.open != blockText {
		dst = s.closeBlock(dst)
		s.openBlock(blockText)
		s.buf = append(s.buf, `{"type":"text","text":""}}`...)
		dst = sse.AppendEvent(dst, "content_block_start", s.buf)
	}
	s.deltaPrefix("text_delta")
	s.buf = append(s.buf, `,"text":`...)
	s.buf = jsonw.AppendRawString(s.buf, t)
	s.buf = append(s.buf, "}}"...)
	return sse.AppendEvent(dst, "content_block_delta", s.buf)
}

func (s *Stream) toolCall(dst []byte, idx int64, c gjson.Result) []byte {
	if s.open != blockTool || s.tool != idx {
		for _, seen := range s.toolsSeen {
			if seen == idx {
				return s.fail(dst, "api_error", gjson.Result{}, "upstream interleaved the arguments of several tool calls")
			}
		}
		s.toolsSeen = append(s.toolsSeen, idx)
		dst = s.closeBlock(dst)
		s.openBlock(blockTool)
		s.tool = idx
		s.buf = appendToolUse(s.buf, c.Get("id"), c.Get("function.name"), int(idx), s.seed)
		s.buf = append(s.buf, `,"input":{}}}`...)
		dst = sse.AppendEvent(dst, "content_block_start", s.buf)
	}
	args := c.Get("function.arguments")
	if !jsonw.IsNonEmptyString(args) {
		return dst
	}
	s.deltaPrefix("input_json_delta")
	s.buf = append(s.buf, `,"partial_json":`...)
	s.buf = jsonw.AppendRawString(s.buf, args)
	s.buf = append(s.buf, "}}"...)
	return sse.AppendEvent(dst, "content_block_delta", s.buf)
}

// openBlock starts a content_block_start payload in buf, up to the
// content_block value.
func (s *Stream) openBlock(kind uint8) {
	s.index++
	s.open = kind
	s.buf = append(s.buf[:0], `{"type":"content_block_start","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.index), 10)
	s.buf = append(s.buf, `,"content_block":`...)
}

// deltaPrefix starts a content_block_delta payload in buf, up to the
// delta's type.
func (s *Stream) deltaPrefix(typ string) {
	s.buf = append(s.buf[:0], `{"type":"content_block_delta","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.index), 10)
	s.buf = append(s.buf, `,"delta":{"type":"`...)
	s.buf = append(s.buf, typ...)
	s.buf = append(s.buf, '"')
}

func (s *Stream) closeBlock(dst []byte) []byte {
	if s.open == blockNone {
		return dst
	}
	s.open = blockNone
	s.buf = append(s.buf[:0], `{"type":"content_block_stop","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.index), 10)
	s.buf = append(s.buf, '}')
	return sse.AppendEvent(dst, "content_block_stop", s.buf)
}

// end finishes the stream at [DONE] or end of input.
func (s *Stream) end(dst []byte) []byte {
	if s.finish == "" {
		return s.fail(dst, "api_error", gjson.Result{}, "upstream stream ended before the response was complete")
	}
	s.done = true
	dst = s.closeBlock(dst)
	s.buf = append(s.buf[:0], `{"type":"message_delta","delta":{"stop_reason":"`...)
	s.buf = append(s.buf, stopReason(s.finish, len(s.toolsSeen) > 0)...)
	s.buf = append(s.buf, `","stop_sequence":null},"usage":`...)
	s.buf = appendUsage(s.buf, s.usage)
	s.buf = append(s.buf, '}')
	dst = sse.AppendEvent(dst, "message_delta", s.buf)
	return sse.AppendEvent(dst, "message_stop", messageStop)
}

// fail ends the stream with an error event.
func (s *Stream) fail(dst []byte, typ string, msg gjson.Result, fallback string) []byte {
	s.done = true
	s.buf = appendError(s.buf[:0], typ, msg, fallback)
	return sse.AppendEvent(dst, "error", s.buf)
}
