package bedrock

import (
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/messages"
	"github.com/weir-ai/weir/extproc/schema/openai"
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
	if info != nil && info.Endpoint == provider.EndpointMessages {
		return &nativeStream{ns: messages.NewNativeStream(info.Model)}
	}
	s := &stream{}
	if info != nil {
		s.info = *info
	}
	s.Chunks = openai.Chunks{Model: s.info.Model, RequestID: s.info.RequestID, Created: now().Unix(), IncludeUsage: s.info.IncludeUsage}
	return s
}

type stream struct {
	openai.ToolChunks
	d    frameDecoder
	info provider.StreamInfo

	in, out, read, write, total int64

	// Anthropic Messages carried by InvokeModelWithResponseStream.
	anth  provider.Stream
	raw   []byte // decoded chunk bytes
	sseEv []byte
}

func (s *stream) Usage() provider.Usage {
	if s.anth != nil {
		return s.anth.Usage()
	}
	return makeUsage(s.in, s.out, s.read, s.write, s.total)
}

// Translate consumes a chunk of event stream bytes and appends OpenAI SSE.
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	if s.Done {
		return dst, nil
	}
	s.d.Feed(chunk)
	for !s.Done {
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
	if eos && !s.Done {
		if s.anth != nil {
			s.Done = true
			return s.anth.Translate(dst, nil, true)
		}
		dst = s.End(dst, s.appendUsage)
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
		return s.Begin(dst, gjson.Result{}, false), nil
	case "contentBlockStart":
		if tu := root.Get("start.toolUse"); tu.IsObject() {
			return s.ToolStart(dst, root.Get("contentBlockIndex").Int(), tu.Get("toolUseId"), tu.Get("name")), nil
		}
	case "contentBlockDelta":
		d := root.Get("delta")
		if t := d.Get("text"); t.Exists() {
			return s.Delta(dst, "content", t), nil
		}
		if r := d.Get("reasoningContent.text"); r.Exists() {
			return s.Delta(dst, "reasoning_content", r), nil
		}
		if in := d.Get("toolUse.input"); in.Exists() {
			return s.ToolArgs(dst, root.Get("contentBlockIndex").Int(), in), nil
		}
	case "messageStop":
		if !s.Finished {
			dst = s.Begin(dst, gjson.Result{}, false)
			s.Finished = true
			s.Open()
			s.Buf = append(s.Buf, "{}"...)
			return s.Emit(dst, finishReason(root.Get("stopReason").Str)), nil
		}
	case "metadata":
		u := parseUsage(root.Get("usage"))
		s.in, s.out, s.read, s.write, s.total = u.PromptTokens-u.CachedTokens-u.CacheWriteTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens, u.TotalTokens
		if s.Finished {
			return s.Stop(dst, s.appendUsage), nil
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
	return s.Fail(dst, errs.EncodeUpstream(msg, typ, code))
}

func (s *stream) appendUsage(out []byte) []byte { return openai.AppendUsage(out, s.Usage()) }
