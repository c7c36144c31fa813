package openai

import (
	"bytes"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/sse"
)

// PassBody is the body an OpenAI-compatible upstream gets for req: the
// model swapped if it differs and, for streams, the final usage chunk
// asked for so spend is always known. It is nil when the client's body
// goes as sent; the client's body is never modified.
func PassBody(req *provider.Request) ([]byte, error) {
	var body []byte // nil until changed: the client's body is never modified
	var err error
	if req.Model != "" && req.Model != req.ClientModel {
		if body, err = sjson.SetBytes(bytes.Clone(req.Body), "model", req.Model); err != nil {
			return nil, fmt.Errorf("%w: %w", errs.ErrInvalidRequest, err)
		}
	}
	// The Responses API always reports usage in its final event.
	if req.Stream && (req.Endpoint == provider.EndpointChat || req.Endpoint == provider.EndpointCompletions) && !gjson.GetBytes(req.Body, "stream_options.include_usage").Bool() {
		if body == nil {
			body = bytes.Clone(req.Body)
		}
		if body, err = sjson.SetBytes(body, "stream_options.include_usage", true); err != nil {
			return nil, fmt.Errorf("%w: %w", errs.ErrInvalidRequest, err)
		}
	}
	return body, nil
}

// TranslateResponse reads usage from a success body and makes sure an
// error body is OpenAI-shaped: OpenAI-compatible servers, and proxies in
// front of them, do not always return JSON errors.
func TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	if resp.Status >= 400 {
		return errs.WrapBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	if !gjson.ValidBytes(resp.Body) {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not JSON", errs.ErrUpstreamBadReply)
	}
	return nil, ParseUsage(gjson.GetBytes(resp.Body, "usage")), nil
}

// NewStream passes chunks through, reading usage from the final chunk.
func NewStream(info *provider.StreamInfo) provider.Stream {
	if info.Endpoint == provider.EndpointResponses {
		// Responses events pass through whole; usage rides on the
		// terminal response.completed / .incomplete / .failed event.
		return &stream{includeUsage: true, responses: true}
	}
	return &stream{includeUsage: info.IncludeUsage}
}

type stream struct {
	p            sse.Parser
	usage        provider.Usage
	includeUsage bool
	responses    bool
}

// Translate passes events through as received when the client asked for
// usage (Responses streams always report it): each complete event's own
// bytes, so an event split across chunks leaves when it is whole.
// Otherwise it drops the usage-only chunk that Weir itself asked for. An
// error event is the one event rewritten: its message loses the provider
// account's details, as a buffered error body's does
// ([errs.RedactMessage]).
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	if err := s.p.Feed(chunk); err != nil {
		return dst, err
	}
	for {
		ev, ok := s.p.Next()
		if !ok {
			break
		}
		dst = s.event(dst, ev)
	}
	if eos {
		if ev, ok := s.p.Flush(); ok {
			dst = s.event(dst, ev)
		}
	}
	return dst, nil
}

func (s *stream) event(dst []byte, ev sse.Event) []byte {
	isJSON := len(ev.Data) > 0 && ev.Data[0] == '{'
	if isJSON && bytes.Contains(ev.Data, errorKey) {
		if data, ok := redactEvent(ev.Data); ok {
			return sse.AppendEvent(dst, string(ev.Name), data)
		}
	}
	if s.responses {
		if isJSON {
			if u := gjson.GetBytes(ev.Data, "response.usage"); u.IsObject() {
				s.usage = ParseUsage(u)
			}
		}
		return append(dst, ev.Raw...)
	}
	usageOnly := false
	if isJSON {
		if u := gjson.GetBytes(ev.Data, "usage"); u.IsObject() {
			s.usage = ParseUsage(u)
			usageOnly = len(gjson.GetBytes(ev.Data, "choices").Array()) == 0
		}
	}
	if s.includeUsage {
		return append(dst, ev.Raw...)
	}
	if usageOnly {
		return dst
	}
	return sse.AppendEvent(dst, string(ev.Name), ev.Data)
}

// errorKey is in every error event: chat's {"error":{...}}, and the
// Responses API's "type":"error" and "response.failed" events.
var errorKey = []byte(`error`)

// redactEvent rewrites the message of an error event, if data is one: a
// chat stream's {"error":{"message"}}, the Responses API's error event
// ({"type":"error","message"}) or its response.failed
// ({"response":{"error":{"message"}}}).
func redactEvent(data []byte) ([]byte, bool) {
	for _, path := range []string{"error.message", "response.error.message", "message"} {
		m := gjson.GetBytes(data, path)
		if m.Type != gjson.String {
			continue
		}
		if path == "message" && gjson.GetBytes(data, "type").Str != "error" {
			continue
		}
		red := errs.RedactMessage(m.Str)
		if red == m.Str {
			return nil, false
		}
		out, err := sjson.SetBytes(bytes.Clone(data), path, red)
		if err != nil {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

func (s *stream) Usage() provider.Usage { return s.usage }
