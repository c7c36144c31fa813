package anthropic

import (
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// TranslateResponse turns a Messages API response (or error) into an OpenAI
// chat.completion (or error) body.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	if resp.Endpoint == provider.EndpointMessages && resp.Status < 400 {
		return messages.NativeResponse(resp.Body, resp.Model)
	}
	return messages.TranslateResponse(resp, now().Unix())
}
