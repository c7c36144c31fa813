package anthropic

import (
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// NewStream starts translating one Anthropic event stream into OpenAI
// chat.completion.chunk events.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	if info != nil && info.Endpoint == provider.EndpointMessages {
		return messages.NewNativeStream(info.Model)
	}
	return messages.NewStream(info, now().Unix())
}
