// Package openai is the translator for OpenAI and every OpenAI-compatible
// server (vLLM, Ollama, Mistral, Groq...). Requests pass through with the
// credential swapped; responses are read only to learn token usage.
package openai

import (
	"bytes"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/sse"
)

type translator struct {
	auth string // "Bearer <key>", or "" for keyless servers
}

// New builds an OpenAI-compatible translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	t := &translator{}
	if b.Credential != nil && b.Credential.Key != "" {
		t.auth = "Bearer " + b.Credential.Key.Reveal()
	}
	return t, nil
}

var paths = [...]string{
	provider.EndpointChat:        "/chat/completions",
	provider.EndpointEmbeddings:  "/embeddings",
	provider.EndpointCompletions: "/completions",
	provider.EndpointResponses:   "/responses",
}

// TranslateRequest swaps the model name if it differs and, for streams,
// asks for the final usage chunk so spend is always known.
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	if int(req.Endpoint) >= len(paths) || paths[req.Endpoint] == "" {
		return nil, fmt.Errorf("%w: endpoint %s", errs.ErrUnsupported, req.Endpoint)
	}
	up := &provider.Upstream{Path: paths[req.Endpoint]}
	if t.auth != "" {
		up.Headers = []provider.Header{{Key: "authorization", Value: t.auth}}
	}
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
	up.Body = body
	return up, nil
}

// TranslateResponse reads usage from a success body and makes sure an
// error body is OpenAI-shaped: OpenAI-compatible servers, and proxies in
// front of them, do not always return JSON errors.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	if resp.Status >= 400 {
		return errs.WrapBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	if !gjson.ValidBytes(resp.Body) {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not JSON", errs.ErrUpstreamBadReply)
	}
	return nil, ParseUsage(gjson.GetBytes(resp.Body, "usage")), nil
}

// ParseUsage reads an OpenAI usage object. Embeddings report only
// prompt_tokens and total_tokens.
func ParseUsage(u gjson.Result) provider.Usage {
	if !u.IsObject() {
		return provider.Usage{}
	}
	out := provider.Usage{
		PromptTokens:     u.Get("prompt_tokens").Int(),
		CompletionTokens: u.Get("completion_tokens").Int(),
		TotalTokens:      u.Get("total_tokens").Int(),
		CachedTokens:     u.Get("prompt_tokens_details.cached_tokens").Int(),
	}
	if in := u.Get("input_tokens"); in.Exists() {
		// The Responses API names them input and output tokens.
		out.PromptTokens = in.Int()
		out.CompletionTokens = u.Get("output_tokens").Int()
		out.CachedTokens = u.Get("input_tokens_details.cached_tokens").Int()
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// NewStream passes chunks through, reading usage from the final chunk.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
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

// Translate forwards chunks untouched when the client asked for usage, which
// keeps the common path copy-free. Otherwise it drops the usage-only chunk
// that Weir itself asked for, re-emitting every other event as received.
func (s *stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	if err := s.p.Feed(chunk); err != nil {
		return dst, err
	}
	if s.includeUsage {
		dst = append(dst, chunk...)
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
	usageOnly := false
	if s.responses {
		if len(ev.Data) > 0 && ev.Data[0] == '{' {
			if u := gjson.GetBytes(ev.Data, "response.usage"); u.IsObject() {
				s.usage = ParseUsage(u)
			}
		}
		return dst
	}
	if len(ev.Data) > 0 && ev.Data[0] == '{' {
		if u := gjson.GetBytes(ev.Data, "usage"); u.IsObject() {
			s.usage = ParseUsage(u)
			usageOnly = len(gjson.GetBytes(ev.Data, "choices").Array()) == 0
		}
	}
	if s.includeUsage || usageOnly {
		return dst
	}
	return sse.AppendEvent(dst, string(ev.Name), ev.Data)
}

func (s *stream) Usage() provider.Usage { return s.usage }
