package messages

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
	"github.com/weir-ai/weir/extproc/sse"
)

// NewStream starts translating one Anthropic event stream into OpenAI
// chat.completion.chunk events; created (Unix seconds) stamps every chunk.
func NewStream(info *provider.StreamInfo, created int64) provider.Stream {
	s := &stream{created: created}
	if info != nil {
		s.model, s.reqID, s.includeUsage = info.Model, info.RequestID, info.IncludeUsage
	}
	return s
}

// toolBlock maps an Anthropic content block index to an OpenAI tool call
// index.
type toolBlock struct {
	block int64
	tool  int
}

type stream struct {
	p            sse.Parser
	model, reqID string
	includeUsage bool
	created      int64

	prefix []byte // chunk JSON up to and including `"choices":`
	buf    []byte // scratch for one chunk
	tools  []toolBlock

	in, out, read, write int64 // usage as observed

	started  bool // message_start (or a first event) seen; prefix built
	finished bool // a finish_reason was sent
	done     bool // [DONE] was sent; later input is ignored
}

// Usage reports what was observed: input tokens from message_start, output
// tokens from the last message_delta.
func (s *stream) Usage() provider.Usage { return makeUsage(s.in, s.out, s.read, s.write) }

// Translate consumes a chunk of Anthropic SSE and appends OpenAI SSE.
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
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
		dst = s.event(dst, ev)
	}
	if eos && !s.done {
		if ev, ok := s.p.Flush(); ok {
			dst = s.event(dst, ev)
		}
		if !s.done {
			dst = s.end(dst)
		}
	}
	return dst, nil
}

// end finishes a stream that stopped without message_stop.
func (s *stream) end(dst []byte) []byte {
	if s.finished {
		// Only message_stop is missing: the answer is complete.
		return s.stop(dst)
	}
	s.done = true
	dst = sse.AppendEvent(dst, "", errs.Encode("upstream stream ended before the response was complete", "server_error", "stream_truncated"))
	return append(dst, sse.Done...)
}

// stop ends the stream: the usage chunk if asked for, then [DONE].
func (s *stream) stop(dst []byte) []byte {
	s.done = true
	if s.includeUsage && s.started {
		s.buf = append(s.buf[:0], s.prefix...)
		s.buf = append(s.buf, `[],"usage":`...)
		s.buf = openai.AppendUsage(s.buf, s.Usage())
		s.buf = append(s.buf, '}')
		dst = sse.AppendEvent(dst, "", s.buf)
	}
	return append(dst, sse.Done...)
}

// begin builds the chunk prefix and sends the role chunk, once.
func (s *stream) begin(dst []byte, id gjson.Result) []byte {
	if s.started {
		return dst
	}
	s.started = true
	s.prefix = append(s.prefix[:0], `{"id":`...)
	if id.Type == gjson.String && id.Str != "" {
		s.prefix = jsonw.AppendRawString(s.prefix, id)
	} else {
		s.prefix = jsonw.AppendString(s.prefix, "chatcmpl-"+s.reqID)
	}
	s.prefix = append(s.prefix, `,"object":"chat.completion.chunk","created":`...)
	s.prefix = strconv.AppendInt(s.prefix, s.created, 10)
	s.prefix = append(s.prefix, `,"model":`...)
	s.prefix = jsonw.AppendString(s.prefix, s.model)
	s.prefix = append(s.prefix, `,"choices":`...)
	s.open()
	s.buf = append(s.buf, `{"role":"assistant","content":""}`...)
	return s.emit(dst, "")
}

// open starts a chunk in buf, up to the delta object.
func (s *stream) open() {
	s.buf = append(s.buf[:0], s.prefix...)
	s.buf = append(s.buf, `[{"index":0,"delta":`...)
}

// emit ends the chunk in buf with finish_reason and appends it to dst.
func (s *stream) emit(dst []byte, finish string) []byte {
	s.buf = append(s.buf, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		s.buf = append(s.buf, "null"...)
	} else {
		s.buf = append(s.buf, '"')
		s.buf = append(s.buf, finish...)
		s.buf = append(s.buf, '"')
	}
	s.buf = append(s.buf, `}]}`...)
	return sse.AppendEvent(dst, "", s.buf)
}

// delta appends a chunk whose delta is {"<key>":<raw JSON string>}.
func (s *stream) delta(dst []byte, key string, str gjson.Result) []byte {
	if str.Type != gjson.String || str.Str == "" {
		return dst
	}
	dst = s.begin(dst, gjson.Result{})
	s.open()
	s.buf = append(s.buf, `{"`...)
	s.buf = append(s.buf, key...)
	s.buf = append(s.buf, `":`...)
	s.buf = jsonw.AppendRawString(s.buf, str)
	s.buf = append(s.buf, '}')
	return s.emit(dst, "")
}

func (s *stream) event(dst []byte, ev sse.Event) []byte {
	if len(ev.Data) == 0 {
		return dst
	}
	js := jsonw.View(ev.Data)
	if !gjson.Valid(js) {
		// Not JSON: nothing to translate. Anthropic sends none.
		return dst
	}
	root := gjson.Parse(js)
	typ := root.Get("type").Str
	if typ == "" {
		typ = string(ev.Name)
	}
	switch typ {
	case "message_start":
		msg := root.Get("message")
		s.observe(msg.Get("usage"))
		return s.begin(dst, msg.Get("id"))
	case "content_block_start":
		cb := root.Get("content_block")
		switch cb.Get("type").Str {
		case "text":
			return s.delta(dst, "content", cb.Get("text"))
		case "thinking":
			return s.delta(dst, "reasoning_content", cb.Get("thinking"))
		case "tool_use":
			return s.toolStart(dst, root.Get("index").Int(), cb)
		}
	case "content_block_delta":
		d := root.Get("delta")
		switch d.Get("type").Str {
		case "text_delta":
			return s.delta(dst, "content", d.Get("text"))
		case "thinking_delta":
			return s.delta(dst, "reasoning_content", d.Get("thinking"))
		case "input_json_delta":
			return s.toolArgs(dst, root.Get("index").Int(), d.Get("partial_json"))
		}
	case "message_delta":
		s.observe(root.Get("usage"))
		if r := root.Get("delta.stop_reason"); r.Type == gjson.String && !s.finished {
			dst = s.begin(dst, gjson.Result{})
			s.finished = true
			s.open()
			s.buf = append(s.buf, "{}"...)
			return s.emit(dst, finishReason(r.Str))
		}
	case "message_stop":
		return s.stop(dst)
	case "error":
		e := root.Get("error")
		t, code := errorType(e.Get("type").Str, 0)
		msg := e.Get("message").String()
		if msg == "" {
			msg = "upstream stream error"
		}
		s.done = true
		dst = sse.AppendEvent(dst, "", errs.EncodeUpstream(msg, t, code))
		return append(dst, sse.Done...)
	}
	// ping, content_block_stop and unknown events.
	return dst
}

// observe records usage. message_start carries input and cache tokens;
// message_delta carries the cumulative output tokens (and, in newer API
// versions, cumulative input counts, which are taken when non-zero).
func (s *stream) observe(u gjson.Result) {
	u.ForEach(func(k, v gjson.Result) bool {
		n := v.Int()
		switch k.Str {
		case "output_tokens":
			s.out = n
		case "input_tokens":
			if n > 0 {
				s.in = n
			}
		case "cache_read_input_tokens":
			if n > 0 {
				s.read = n
			}
		case "cache_creation_input_tokens":
			if n > 0 {
				s.write = n
			}
		}
		return true
	})
}

func (s *stream) toolStart(dst []byte, block int64, cb gjson.Result) []byte {
	dst = s.begin(dst, gjson.Result{})
	tool := len(s.tools)
	s.tools = append(s.tools, toolBlock{block: block, tool: tool})
	s.open()
	s.buf = append(s.buf, `{"tool_calls":[{"index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(tool), 10)
	s.buf = append(s.buf, `,"id":`...)
	s.buf = jsonw.AppendRawString(s.buf, cb.Get("id"))
	s.buf = append(s.buf, `,"type":"function","function":{"name":`...)
	s.buf = jsonw.AppendRawString(s.buf, cb.Get("name"))
	s.buf = append(s.buf, `,"arguments":""}}]}`...)
	return s.emit(dst, "")
}

func (s *stream) toolArgs(dst []byte, block int64, partial gjson.Result) []byte {
	if partial.Type != gjson.String || partial.Str == "" {
		return dst
	}
	tool := -1
	for i := len(s.tools) - 1; i >= 0; i-- {
		if s.tools[i].block == block {
			tool = s.tools[i].tool
			break
		}
	}
	if tool < 0 {
		return dst // a delta for a block that did not start as tool_use
	}
	s.open()
	s.buf = append(s.buf, `{"tool_calls":[{"index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(tool), 10)
	s.buf = append(s.buf, `,"function":{"arguments":`...)
	s.buf = jsonw.AppendRawString(s.buf, partial)
	s.buf = append(s.buf, `}}]}`...)
	return s.emit(dst, "")
}
