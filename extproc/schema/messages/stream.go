package messages

import (
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
	s := &stream{}
	s.Created = created
	if info != nil {
		s.Model, s.RequestID, s.IncludeUsage = info.Model, info.RequestID, info.IncludeUsage
	}
	return s
}

type stream struct {
	openai.ToolChunks
	p sse.Parser

	n counts // usage as observed
}

// Usage reports what was observed: input tokens from message_start, output
// tokens from the last message_delta.
func (s *stream) Usage() provider.Usage { return s.n.usage() }

// Translate consumes a chunk of Anthropic SSE and appends OpenAI SSE.
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	return s.Pump(dst, &s.p, chunk, eos, s.event, s.appendUsage)
}

func (s *stream) appendUsage(out []byte) []byte { return openai.AppendUsage(out, s.Usage()) }

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
		s.n.observe(msg.Get("usage"), gjson.Result.Int)
		return s.Begin(dst, msg.Get("id"), false)
	case "content_block_start":
		cb := root.Get("content_block")
		switch cb.Get("type").Str {
		case "text":
			return s.Delta(dst, "content", cb.Get("text"))
		case "thinking":
			return s.Delta(dst, "reasoning_content", cb.Get("thinking"))
		case "tool_use":
			return s.ToolStart(dst, root.Get("index").Int(), cb.Get("id"), cb.Get("name"))
		}
	case "content_block_delta":
		d := root.Get("delta")
		switch d.Get("type").Str {
		case "text_delta":
			return s.Delta(dst, "content", d.Get("text"))
		case "thinking_delta":
			return s.Delta(dst, "reasoning_content", d.Get("thinking"))
		case "input_json_delta":
			return s.ToolArgs(dst, root.Get("index").Int(), d.Get("partial_json"))
		}
	case "message_delta":
		s.n.observe(root.Get("usage"), gjson.Result.Int)
		if r := root.Get("delta.stop_reason"); r.Type == gjson.String && !s.Finished {
			dst = s.Begin(dst, gjson.Result{}, false)
			s.Finished = true
			s.Open()
			s.Buf = append(s.Buf, "{}"...)
			return s.Emit(dst, finishReason(r.Str))
		}
	case "message_stop":
		return s.Stop(dst, s.appendUsage)
	case "error":
		e := root.Get("error")
		t, code := errorType(e.Get("type").Str, 0)
		msg := e.Get("message").String()
		if msg == "" {
			msg = "upstream stream error"
		}
		return s.Fail(dst, errs.EncodeUpstream(msg, t, code))
	}
	// ping, content_block_stop and unknown events.
	return dst
}
