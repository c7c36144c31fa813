package bedrock

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/messages"
	"github.com/weir-ai/weir/extproc/schema/openai"
	"github.com/weir-ai/weir/extproc/sse"
)

// ConverseStream events (the :event-type header names the member of
// ConverseStreamOutput, the payload is its JSON):
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
// messageStart {role}; contentBlockStart {contentBlockIndex, start:
// {toolUse:{toolUseId,name}}}; contentBlockDelta {contentBlockIndex, delta:
// {text} | {toolUse:{input}} | {reasoningContent:{text}}};
// contentBlockStop; messageStop {stopReason}; metadata {usage, metrics}.
// Exceptions have :message-type "exception" and :exception-type
// (internalServerException, modelStreamErrorException, validationException,
// throttlingException, serviceUnavailableException) with {"message"}.
//
// InvokeModelWithResponseStream sends "chunk" events whose payload is a
// PayloadPart {"bytes": base64}; for Anthropic models the bytes are one
// Messages streaming event's JSON, handed to the Anthropic stream translator.
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_PayloadPart.html

// NewStream starts translating one Bedrock event stream into OpenAI
// chat.completion.chunk events.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	s := &stream{created: now().Unix()}
	if info != nil {
		s.info = *info
	}
	return s
}

type toolBlock struct {
	block int64
	tool  int
}

type stream struct {
	d       frameDecoder
	info    provider.StreamInfo
	created int64

	prefix []byte
	buf    []byte
	tools  []toolBlock

	in, out, read, write, total int64

	// Anthropic Messages carried by InvokeModelWithResponseStream.
	anth    provider.Stream
	raw     []byte // decoded chunk bytes
	sseEv   []byte
	started bool
	// finished: a finish_reason was sent; done: [DONE] was sent.
	finished, done bool
}

func (s *stream) Usage() provider.Usage {
	if s.anth != nil {
		return s.anth.Usage()
	}
	return makeUsage(s.in, s.out, s.read, s.write, s.total)
}

// Translate consumes a chunk of event stream bytes and appends OpenAI SSE.
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	if s.done {
		return dst, nil
	}
	s.d.Feed(chunk)
	for !s.done {
		m, ok, err := s.d.Next()
		if err != nil {
			return dst, fmt.Errorf("%w: %w", errs.ErrUpstreamBadReply, err)
		}
		if !ok {
			break
		}
		if dst, err = s.message(dst, &m); err != nil {
			return dst, err
		}
	}
	if eos && !s.done {
		if s.anth != nil {
			s.done = true
			return s.anth.Translate(dst, nil, true)
		}
		dst = s.end(dst)
	}
	return dst, nil
}

func (s *stream) message(dst []byte, m *eventstream.Message) ([]byte, error) {
	switch headerString(m, ":message-type") {
	case "exception":
		return s.fail(dst, headerString(m, ":exception-type"), m.Payload), nil
	case "error":
		msg := headerString(m, ":error-message")
		if msg == "" {
			msg = headerString(m, ":error-code")
		}
		return s.failMsg(dst, "", msg), nil
	}
	js := jsonw.View(m.Payload)
	if !gjson.Valid(js) {
		return dst, fmt.Errorf("%w: event %q payload is not JSON", errs.ErrUpstreamBadReply, headerString(m, ":event-type"))
	}
	root := gjson.Parse(js)
	switch headerString(m, ":event-type") {
	case "chunk":
		return s.chunk(dst, root)
	case "messageStart":
		return s.begin(dst), nil
	case "contentBlockStart":
		if tu := root.Get("start.toolUse"); tu.IsObject() {
			return s.toolStart(dst, root.Get("contentBlockIndex").Int(), tu), nil
		}
	case "contentBlockDelta":
		d := root.Get("delta")
		if t := d.Get("text"); t.Exists() {
			return s.delta(dst, "content", t), nil
		}
		if r := d.Get("reasoningContent.text"); r.Exists() {
			return s.delta(dst, "reasoning_content", r), nil
		}
		if in := d.Get("toolUse.input"); in.Exists() {
			return s.toolArgs(dst, root.Get("contentBlockIndex").Int(), in), nil
		}
	case "messageStop":
		if !s.finished {
			dst = s.begin(dst)
			s.finished = true
			s.open()
			s.buf = append(s.buf, "{}"...)
			return s.emit(dst, finishReason(root.Get("stopReason").Str)), nil
		}
	case "metadata":
		u := parseUsage(root.Get("usage"))
		s.in, s.out, s.read, s.write, s.total = u.PromptTokens-u.CachedTokens-u.CacheWriteTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens, u.TotalTokens
		if s.finished {
			return s.stop(dst), nil
		}
	}
	// contentBlockStop and unknown events.
	return dst, nil
}

// chunk hands an InvokeModelWithResponseStream part to the Anthropic
// stream translator as one SSE event.
func (s *stream) chunk(dst []byte, root gjson.Result) ([]byte, error) {
	b := root.Get("bytes")
	if b.Type != gjson.String {
		return dst, fmt.Errorf("%w: chunk without bytes", errs.ErrUpstreamBadReply)
	}
	n := base64.StdEncoding.DecodedLen(len(b.Str))
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(s.raw[:n], []byte(b.Str))
	if err != nil {
		return dst, fmt.Errorf("%w: chunk bytes: %w", errs.ErrUpstreamBadReply, err)
	}
	if s.anth == nil {
		s.anth = messages.NewStream(&s.info, now().Unix())
	}
	s.sseEv = append(s.sseEv[:0], "data: "...)
	s.sseEv = append(s.sseEv, s.raw[:n]...)
	s.sseEv = append(s.sseEv, '\n', '\n')
	return s.anth.Translate(dst, s.sseEv, false)
}

// fail ends the stream with an OpenAI error event for an exception frame.
func (s *stream) fail(dst []byte, exception string, payload []byte) []byte {
	msg := ""
	if js := jsonw.View(payload); gjson.Valid(js) {
		msg = gjson.Get(js, "message").String()
		if msg == "" {
			msg = gjson.Get(js, "Message").String()
		}
	}
	if msg == "" {
		msg = "upstream stream error"
		if exception != "" {
			msg += ": " + exception
		}
	}
	return s.failMsg(dst, exception, msg)
}

func (s *stream) failMsg(dst []byte, exception, msg string) []byte {
	typ, code := errorKind(0, exception)
	s.done = true
	dst = sse.AppendEvent(dst, "", errs.EncodeUpstream(msg, typ, code))
	return append(dst, sse.Done...)
}

// end finishes a stream that stopped without metadata.
func (s *stream) end(dst []byte) []byte {
	if s.finished {
		return s.stop(dst)
	}
	s.done = true
	dst = sse.AppendEvent(dst, "", errs.Encode("upstream stream ended before the response was complete", "server_error", "stream_truncated"))
	return append(dst, sse.Done...)
}

func (s *stream) stop(dst []byte) []byte {
	s.done = true
	if s.info.IncludeUsage && s.started {
		s.buf = append(s.buf[:0], s.prefix...)
		s.buf = append(s.buf, `[],"usage":`...)
		s.buf = openai.AppendUsage(s.buf, s.Usage())
		s.buf = append(s.buf, '}')
		dst = sse.AppendEvent(dst, "", s.buf)
	}
	return append(dst, sse.Done...)
}

func (s *stream) begin(dst []byte) []byte {
	if s.started {
		return dst
	}
	s.started = true
	s.prefix = append(s.prefix[:0], `{"id":`...)
	s.prefix = jsonw.AppendString(s.prefix, "chatcmpl-"+s.info.RequestID)
	s.prefix = append(s.prefix, `,"object":"chat.completion.chunk","created":`...)
	s.prefix = strconv.AppendInt(s.prefix, s.created, 10)
	s.prefix = append(s.prefix, `,"model":`...)
	s.prefix = jsonw.AppendString(s.prefix, s.info.Model)
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

func (s *stream) delta(dst []byte, key string, str gjson.Result) []byte {
	if str.Type != gjson.String || str.Str == "" {
		return dst
	}
	dst = s.begin(dst)
	s.open()
	s.buf = append(s.buf, `{"`...)
	s.buf = append(s.buf, key...)
	s.buf = append(s.buf, `":`...)
	s.buf = jsonw.AppendRawString(s.buf, str)
	s.buf = append(s.buf, '}')
	return s.emit(dst, "")
}

func (s *stream) toolStart(dst []byte, block int64, tu gjson.Result) []byte {
	dst = s.begin(dst)
	tool := len(s.tools)
	s.tools = append(s.tools, toolBlock{block: block, tool: tool})
	s.open()
	s.buf = append(s.buf, `{"tool_calls":[{"index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(tool), 10)
	s.buf = append(s.buf, `,"id":`...)
	s.buf = jsonw.AppendRawString(s.buf, tu.Get("toolUseId"))
	s.buf = append(s.buf, `,"type":"function","function":{"name":`...)
	s.buf = jsonw.AppendRawString(s.buf, tu.Get("name"))
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
		return dst
	}
	s.open()
	s.buf = append(s.buf, `{"tool_calls":[{"index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(tool), 10)
	s.buf = append(s.buf, `,"function":{"arguments":`...)
	s.buf = jsonw.AppendRawString(s.buf, partial)
	s.buf = append(s.buf, `}}]}`...)
	return s.emit(dst, "")
}
