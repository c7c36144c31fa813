package gemini

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/sse"
)

// NewStream starts translating one streamGenerateContent?alt=sse response
// into OpenAI chat.completion.chunk events; created (Unix seconds) stamps
// every chunk.
func NewStream(info *provider.StreamInfo, created int64) provider.Stream {
	s := &stream{created: created}
	if info != nil {
		s.model, s.reqID, s.includeUsage = info.Model, info.RequestID, info.IncludeUsage
	}
	return s
}

type stream struct {
	p            sse.Parser
	model, reqID string
	includeUsage bool
	created      int64

	prefix []byte // chunk JSON up to and including `"choices":`
	buf    []byte // scratch for one chunk
	usage  usage
	calls  int // tool calls sent

	started  bool // prefix built, role chunk sent
	finished bool // a finish_reason was sent
	done     bool // [DONE] sent; later input is ignored
}

func (s *stream) Usage() provider.Usage { return s.usage.openai() }

// Translate consumes a chunk of Gemini SSE and appends OpenAI SSE. Gemini
// has no terminal event: the stream ends after the event carrying the
// finishReason, so the end of input finishes the OpenAI stream.
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

func (s *stream) end(dst []byte) []byte {
	if s.finished {
		return s.stop(dst)
	}
	return s.fail(dst, errs.Encode("upstream stream ended before the response was complete", "server_error", "stream_truncated"))
}

func (s *stream) fail(dst, body []byte) []byte {
	s.done = true
	dst = sse.AppendEvent(dst, "", body)
	return append(dst, sse.Done...)
}

// stop sends the usage chunk if asked for, then [DONE].
func (s *stream) stop(dst []byte) []byte {
	s.done = true
	if s.includeUsage && s.started {
		s.buf = append(s.buf[:0], s.prefix...)
		s.buf = append(s.buf, `[],"usage":`...)
		s.buf = appendUsage(s.buf, s.usage)
		s.buf = append(s.buf, '}')
		dst = sse.AppendEvent(dst, "", s.buf)
	}
	return append(dst, sse.Done...)
}

func (s *stream) begin(dst []byte, id gjson.Result) []byte {
	if s.started {
		return dst
	}
	s.started = true
	s.prefix = append(s.prefix[:0], `{"id":`...)
	s.prefix = appendID(s.prefix, id, s.reqID)
	s.prefix = append(s.prefix, `,"object":"chat.completion.chunk","created":`...)
	s.prefix = strconv.AppendInt(s.prefix, s.created, 10)
	s.prefix = append(s.prefix, `,"model":`...)
	s.prefix = jsonw.AppendString(s.prefix, s.model)
	s.prefix = append(s.prefix, `,"choices":`...)
	s.open()
	s.buf = append(s.buf, `{"role":"assistant","content":""}`...)
	return s.emit(dst, "")
}

func (s *stream) open() {
	s.buf = append(s.buf[:0], s.prefix...)
	s.buf = append(s.buf, `[{"index":0,"delta":`...)
}

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

func (s *stream) event(dst, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	js := jsonw.View(data)
	if !gjson.Valid(js) {
		return dst // not JSON: nothing to translate
	}
	root := gjson.Parse(js)
	if root.IsArray() { // a JSON-array framed error
		root = root.Get("0")
	}
	if !root.IsObject() {
		return dst
	}
	var candidates, usageMeta, feedback, respID, upErr gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "candidates":
			candidates = v
		case "usageMetadata":
			usageMeta = v
		case "promptFeedback":
			feedback = v
		case "responseId":
			respID = v
		case "error":
			upErr = v
		}
		return true
	})
	if upErr.IsObject() {
		typ, code := errorType(upErr.Get("status").Str, int(upErr.Get("code").Int()))
		msg := upErr.Get("message").String()
		if msg == "" {
			msg = "upstream stream error"
		}
		return s.fail(dst, errs.EncodeUpstream(msg, typ, code))
	}
	if usageMeta.IsObject() {
		s.usage = parseUsage(usageMeta)
	}
	cand := candidates.Get("0")
	if !cand.IsObject() {
		if r := feedback.Get("blockReason"); r.Str != "" {
			return s.fail(dst, errs.Body(promptBlocked(r.Str)))
		}
		return dst
	}
	dst = s.begin(dst, respID)
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		if fc := p.Get("functionCall"); fc.IsObject() {
			s.open()
			s.buf = append(s.buf, `{"tool_calls":[`...)
			s.buf = appendToolCall(s.buf, s.calls, s.calls, fc, p.Get("thoughtSignature"))
			s.buf = append(s.buf, "]}"...)
			dst = s.emit(dst, "")
			s.calls++
			return true
		}
		t := p.Get("text")
		if t.Type != gjson.String || t.Str == "" {
			return true
		}
		s.open()
		if p.Get("thought").Bool() {
			s.buf = append(s.buf, `{"reasoning_content":`...)
		} else {
			s.buf = append(s.buf, `{"content":`...)
		}
		s.buf = jsonw.AppendRawString(s.buf, t)
		s.buf = append(s.buf, '}')
		dst = s.emit(dst, "")
		return true
	})
	if r := cand.Get("finishReason"); r.Str != "" && !s.finished {
		s.finished = true
		s.open()
		s.buf = append(s.buf, "{}"...)
		dst = s.emit(dst, finishReason(r.Str, s.calls > 0))
	}
	return dst
}
