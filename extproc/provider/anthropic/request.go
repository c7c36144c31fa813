package anthropic

import (
	"fmt"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// TranslateRequest turns an OpenAI chat completion request into a Messages
// API request.
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	if req.Endpoint == provider.EndpointMessages {
		return t.nativeRequest(req)
	}
	if req.Endpoint != provider.EndpointChat {
		return nil, fmt.Errorf("%w: the %s endpoint (Anthropic serves chat completions only)", errs.ErrUnsupported, req.Endpoint)
	}
	body, err := messages.TranslateChat(req)
	if err != nil {
		return nil, err
	}
	// Headers are copied: a caller that edits them (to redact the key for a
	// log, say) must not change what later requests send.
	up := &provider.Upstream{Path: "/v1/messages", Body: body, Headers: make([]provider.Header, len(t.headers))}
	copy(up.Headers, t.headers)
	return up, nil
}
