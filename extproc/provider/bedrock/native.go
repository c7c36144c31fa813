package bedrock

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// Native passthrough of POST /v1/messages (provider.EndpointMessages) for
// Anthropic models, through InvokeModel: see the package documentation.

var _ provider.Native = (*translator)(nil)

// Serves reports whether Bedrock serves the Messages API natively for
// model: an Anthropic model id, with or without Weir's invoke: prefix.
func (t *translator) Serves(e provider.Endpoint, model string) bool {
	return e == provider.EndpointMessages && isAnthropic(strings.TrimPrefix(model, InvokePrefix))
}

// nativeRequest builds the signed InvokeModel request for a client's
// Messages body: no "model" and no "stream" (the path and the operation
// say them), anthropic_version unless the client set one, and the
// anthropic-beta header as the anthropic_beta body field, which is how
// InvokeModel takes it.
func (t *translator) nativeRequest(req *provider.Request) (*provider.Upstream, error) {
	model := req.Model
	if model == "" {
		model = gjson.GetBytes(req.Body, "model").Str
	}
	id := strings.TrimPrefix(model, InvokePrefix)
	if !isAnthropic(id) {
		return nil, fmt.Errorf("%w: the Messages API on Bedrock is for Anthropic models, not %q", errs.ErrUnsupported, id)
	}
	if err := messages.NativeCheckStoredState(req.Body); err != nil {
		return nil, err
	}
	body, err := messages.NativeRewrite(req.Body, &messages.NativeEdit{
		DropModel: true, DropStream: true, Version: AnthropicVersion, Beta: req.AnthropicBeta,
	})
	if err != nil {
		return nil, err
	}
	if body == nil {
		body = req.Body
	}
	op := "invoke"
	if req.Stream {
		op = "invoke-with-response-stream"
	}
	escaped, raw := modelPath(id, op)
	return t.sign(req.Ctx, escaped, raw, body)
}

// nativeStream turns InvokeModelWithResponseStream's frames back into
// Anthropic's SSE: each chunk's PayloadPart bytes are one Messages event's
// JSON; an exception frame becomes an Anthropic error event.
type nativeStream struct {
	d    frameDecoder
	ns   *messages.NativeStream
	raw  []byte // decoded chunk bytes
	done bool   // an exception ended the stream; later input is ignored
}

func (s *nativeStream) Usage() provider.Usage { return s.ns.Usage() }

func (s *nativeStream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
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
		if s.d.Pending() > 0 {
			return dst, fmt.Errorf("%w: the stream ended inside an event stream frame", errs.ErrUpstreamBadReply)
		}
		return dst, s.ns.Finish()
	}
	return dst, nil
}

func (s *nativeStream) message(dst []byte, m *eventstream.Message) ([]byte, error) {
	switch headerString(m, ":message-type") {
	case "exception":
		exc := headerString(m, ":exception-type")
		msg := gjson.Get(jsonw.View(m.Payload), "message").String()
		if msg == "" {
			msg = gjson.Get(jsonw.View(m.Payload), "Message").String()
		}
		if msg == "" {
			msg = "upstream stream error: " + exc
		}
		s.done = true
		return s.ns.AppendError(dst, nativeErrorType(exc), msg), nil
	case "error":
		msg := headerString(m, ":error-message")
		if msg == "" {
			msg = "upstream stream error: " + headerString(m, ":error-code")
		}
		s.done = true
		return s.ns.AppendError(dst, "api_error", msg), nil
	}
	if headerString(m, ":event-type") != "chunk" {
		return dst, nil
	}
	b := gjson.Get(jsonw.View(m.Payload), "bytes")
	if b.Type != gjson.String {
		return dst, fmt.Errorf("%w: chunk without bytes", errs.ErrUpstreamBadReply)
	}
	// Base64 needs no JSON escapes, so the payload's own bytes are decoded
	// without a copy; an escaped string (a JSON encoder may write "\/")
	// takes its unescaped copy.
	var enc []byte
	if raw := b.Raw; len(raw) >= 2 && strings.IndexByte(raw, '\\') < 0 && b.Index > 0 && b.Index+len(raw) <= len(m.Payload) {
		enc = m.Payload[b.Index+1 : b.Index+len(raw)-1]
	} else {
		enc = []byte(b.Str)
	}
	n := base64.StdEncoding.DecodedLen(len(enc))
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(s.raw[:n], enc)
	if err != nil {
		return dst, fmt.Errorf("%w: chunk bytes: %w", errs.ErrUpstreamBadReply, err)
	}
	return s.ns.AppendEvent(dst, s.raw[:n])
}

// nativeErrorType is the Anthropic error type of a Bedrock stream
// exception, so Anthropic SDKs raise the class they would for Anthropic's
// own stream (rate limits and overload are retryable there).
func nativeErrorType(exception string) string {
	switch exception {
	case "throttlingException":
		return "rate_limit_error"
	case "serviceUnavailableException":
		return "overloaded_error"
	case "validationException":
		return "invalid_request_error"
	case "modelTimeoutException":
		return "timeout_error"
	}
	// internalServerException, modelStreamErrorException and new ones.
	return "api_error"
}
