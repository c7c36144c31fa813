package vertex

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// Native passthrough of POST /v1/messages (provider.EndpointMessages) for
// Anthropic models, through rawPredict: see the package documentation.

var _ provider.Native = (*translator)(nil)

// Serves reports whether Vertex serves the Messages API natively for
// model: one published by Anthropic.
func (t *translator) Serves(e provider.Endpoint, model string) bool {
	return e == provider.EndpointMessages && isAnthropic(strings.TrimPrefix(model, "models/"))
}

// nativeRequest builds the rawPredict (streamRawPredict) request for a
// client's Messages body: no "model" (the path names it), "stream" kept,
// anthropic_version unless the client set one, and anthropic-beta as the
// header it is on Anthropic's API.
func (t *translator) nativeRequest(req *provider.Request) (*provider.Upstream, error) {
	model := req.Model
	if model == "" {
		model = gjson.GetBytes(req.Body, "model").Str
	}
	model = strings.TrimPrefix(model, "models/")
	if !isAnthropic(model) {
		return nil, fmt.Errorf("%w: the Messages API on Vertex AI is for Anthropic models, not %q", errs.ErrUnsupported, model)
	}
	if err := messages.NativeCheckStoredState(req.Body); err != nil {
		return nil, err
	}
	body, err := messages.NativeRewrite(req.Body, &messages.NativeEdit{DropModel: true, Version: AnthropicVersion})
	if err != nil {
		return nil, err
	}
	op := ":rawPredict"
	if req.Stream {
		op = ":streamRawPredict"
	}
	up := &provider.Upstream{Path: t.base + "anthropic/models/" + url.PathEscape(model) + op, Body: body}
	if err := t.authorize(req, up); err != nil {
		return nil, err
	}
	if req.AnthropicBeta != "" {
		up.Headers = append(up.Headers, provider.Header{Key: "anthropic-beta", Value: req.AnthropicBeta})
	}
	return up, nil
}
