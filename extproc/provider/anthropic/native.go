package anthropic

import (
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// Native passthrough of POST /v1/messages (provider.EndpointMessages):
// the client's body goes upstream as it came, with "model" changed only
// when the route resolved an alias, and the reply and its events come back
// as they are, with the client's model name. See the package
// documentation.

var _ provider.Native = (*translator)(nil)

// Serves reports that Anthropic serves the Messages API natively, for
// every model.
func (t *translator) Serves(e provider.Endpoint, _ string) bool {
	return e == provider.EndpointMessages
}

// nativeRequest builds the upstream request for a client's Messages body.
func (t *translator) nativeRequest(req *provider.Request) (*provider.Upstream, error) {
	if err := messages.NativeCheckStoredState(req.Body); err != nil {
		return nil, err
	}
	e := messages.NativeEdit{}
	if req.Model != req.ClientModel {
		e.Model = req.Model
	}
	body, err := messages.NativeRewrite(req.Body, &e)
	if err != nil {
		return nil, err
	}
	up := &provider.Upstream{Path: "/v1/messages", Body: body, Headers: make([]provider.Header, len(t.headers), len(t.headers)+1)}
	copy(up.Headers, t.headers)
	if req.AnthropicBeta != "" {
		up.Headers = append(up.Headers, provider.Header{Key: "anthropic-beta", Value: req.AnthropicBeta})
	}
	return up, nil
}
