package gemini

import (
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
	"github.com/weir-ai/weir/extproc/sse"
)

// NewStream starts translating one streamGenerateContent?alt=sse response
// into OpenAI chat.completion.chunk events; created (Unix seconds) stamps
// every chunk.
func NewStream(info *provider.StreamInfo, created int64) provider.Stream {
	s := &stream{}
	s.Created = created
	if info != nil {
		s.Model, s.RequestID, s.IncludeUsage = info.Model, info.RequestID, info.IncludeUsage
	}
	return s
}

type stream struct {
	openai.Chunks
	p     sse.Parser
	usage usage
	calls int // tool calls sent
}

func (s *stream) Usage() provider.Usage { return s.usage.openai() }

// Translate consumes a chunk of Gemini SSE and appends OpenAI SSE. Gemini
// has no terminal event: the stream ends after the event carrying the
// finishReason, so the end of input finishes the OpenAI stream.
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	return s.Pump(dst, &s.p, chunk, eos, s.event, s.appendUsage)
}

func (s *stream) appendUsage(out []byte) []byte { return appendUsage(out, s.usage) }

func (s *stream) event(dst []byte, ev sse.Event) []byte {
	data := ev.Data
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
		return s.Fail(dst, errs.EncodeUpstream(msg, typ, code))
	}
	if usageMeta.IsObject() {
		s.usage = parseUsage(usageMeta)
	}
	cand := candidates.Get("0")
	if !cand.IsObject() {
		if r := feedback.Get("blockReason"); r.Str != "" {
			return s.Fail(dst, errs.Body(promptBlocked(r.Str)))
		}
		return dst
	}
	dst = s.Begin(dst, respID, true)
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		if fc := p.Get("functionCall"); fc.IsObject() {
			s.Open()
			s.Buf = append(s.Buf, `{"tool_calls":[`...)
			s.Buf = appendToolCall(s.Buf, s.calls, s.calls, fc, p.Get("thoughtSignature"))
			s.Buf = append(s.Buf, "]}"...)
			dst = s.Emit(dst, "")
			s.calls++
			return true
		}
		t := p.Get("text")
		if t.Type != gjson.String || t.Str == "" {
			return true
		}
		s.Open()
		if p.Get("thought").Bool() {
			s.Buf = append(s.Buf, `{"reasoning_content":`...)
		} else {
			s.Buf = append(s.Buf, `{"content":`...)
		}
		s.Buf = jsonw.AppendRawString(s.Buf, t)
		s.Buf = append(s.Buf, '}')
		dst = s.Emit(dst, "")
		return true
	})
	if r := cand.Get("finishReason"); r.Str != "" && !s.Finished {
		s.Finished = true
		s.Open()
		s.Buf = append(s.Buf, "{}"...)
		dst = s.Emit(dst, finishReason(r.Str, s.calls > 0))
	}
	return dst
}
