// Package openai is the translator for OpenAI and every OpenAI-compatible
// server (vLLM, Ollama, Mistral, Groq...). Requests pass through with the
// credential swapped; responses are read only to learn token usage.
package openai

import (
	"fmt"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/openai"
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
	body, err := openai.PassBody(req)
	if err != nil {
		return nil, err
	}
	up.Body = body
	return up, nil
}

// TranslateResponse reads usage from a success body and makes sure an
// error body is OpenAI-shaped.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	return openai.TranslateResponse(resp)
}

// NewStream passes chunks through, reading usage from the final chunk.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	return openai.NewStream(info)
}
