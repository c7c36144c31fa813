// Package azure is the translator for Azure OpenAI (Azure AI Foundry
// "Azure OpenAI in Foundry Models"). The wire format is OpenAI's, so the
// body work is done by the openai translator; this package changes what
// differs:
//
//   - Path: /openai/deployments/{deployment}/{chat/completions|embeddings|
//     completions}?api-version=<version>. The deployment is the model name
//     sent upstream (aliases and provider_model already applied), so a
//     model entry's provider_model names the Azure deployment.
//     With api_version "v1" the path is instead /openai/v1/<operation>
//     (Azure's version-less v1 API, where "model" in the body names the
//     deployment).
//   - Auth: the backend credential goes in the api-key header. Microsoft
//     Entra ID bearer tokens are not supported yet (they expire within the
//     hour and need a refresher).
//   - Errors: Azure's error bodies are OpenAI-like but not always
//     OpenAI-shaped ("type": null, numeric "code"s such as "429"). They are
//     rewritten to {"error":{"message","type","param","code"}}, keeping the
//     status. A prompt blocked by the content filter (400, code
//     "content_filter") becomes type invalid_request_error, code
//     content_filter, with the filtered categories named in the message. A
//     completion cut by the filter stays a 200 with finish_reason
//     "content_filter", passed through.
//
// Backend options (config.Backend.Options):
//
//   - api_version: the api-version query parameter. Default
//     [DefaultAPIVersion], the current GA data-plane inference version;
//     "v1" selects the v1 API. Any other key is an error.
//
// Sources: https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference
// (paths, api-key header, api-version),
// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/api-version-lifecycle
// (v1 API) and
// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter
// (content filter errors and finish_reason).
package azure

import (
	"fmt"
	"net/url"
	"sort"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/openai"
)

// DefaultAPIVersion is the api-version sent when the backend sets none: the
// latest GA version of the data-plane inference API.
const DefaultAPIVersion = "2024-10-21"

type translator struct {
	inner      provider.Translator // openai, keyless: body passthrough, usage, streams
	apiVersion string
	v1         bool
	key        string
}

// New builds an Azure OpenAI translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	t := &translator{apiVersion: DefaultAPIVersion}
	keys := make([]string, 0, len(b.Options))
	for k := range b.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := b.Options[k]
		switch k {
		case "api_version":
			if v == "" {
				return nil, fmt.Errorf("azure: options.api_version must not be empty")
			}
			t.apiVersion = v
		default:
			return nil, fmt.Errorf("azure: unknown option %q (known: api_version)", k)
		}
	}
	t.v1 = t.apiVersion == "v1"
	if b.Credential != nil && b.Credential.Key != "" {
		t.key = b.Credential.Key.Reveal()
	}
	// The openai translator does the body work; it gets no credential, as
	// Azure wants api-key rather than a bearer token.
	inner, err := openai.New(&config.Backend{Name: b.Name, Provider: "openai", BaseURL: b.BaseURL})
	if err != nil {
		return nil, err
	}
	t.inner = inner
	return t, nil
}

var operations = [...]string{
	provider.EndpointChat:        "/chat/completions",
	provider.EndpointEmbeddings:  "/embeddings",
	provider.EndpointCompletions: "/completions",
	provider.EndpointResponses:   "/responses",
}

// TranslateRequest builds the deployment path and sets api-key; the body is
// the openai translator's (model swapped, include_usage asked for).
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	if int(req.Endpoint) >= len(operations) || operations[req.Endpoint] == "" {
		return nil, fmt.Errorf("%w: endpoint %s", errs.ErrUnsupported, req.Endpoint)
	}
	up, err := t.inner.TranslateRequest(req)
	if err != nil {
		return nil, err
	}
	switch {
	case t.v1:
		up.Path = "/openai/v1" + operations[req.Endpoint]
	case req.Endpoint == provider.EndpointResponses:
		// Responses is not per deployment: the body's model names it.
		// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/responses
		up.Path = "/openai/responses?api-version=" + url.QueryEscape(t.apiVersion)
	default:
		if req.Model == "" {
			return nil, fmt.Errorf("%w: model is required (it names the Azure deployment)", errs.ErrInvalidRequest)
		}
		up.Path = "/openai/deployments/" + url.PathEscape(req.Model) + operations[req.Endpoint] +
			"?api-version=" + url.QueryEscape(t.apiVersion)
	}
	up.Headers = up.Headers[:0]
	if t.key != "" {
		up.Headers = append(up.Headers, provider.Header{Key: "api-key", Value: t.key})
	}
	return up, nil
}

// TranslateResponse normalises error bodies and otherwise defers to the
// openai translator for usage.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	if resp.Status >= 400 {
		return ErrorBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	return t.inner.TranslateResponse(resp)
}

// NewStream is the openai stream: Azure streams are OpenAI's, plus chunks
// with "choices": [] carrying prompt_filter_results, which pass through.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	return t.inner.NewStream(info)
}

var _ provider.Translator = (*translator)(nil)
