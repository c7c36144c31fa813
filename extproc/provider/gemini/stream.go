package gemini

import (
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/gemini"
)

// NewStream starts translating one streamGenerateContent?alt=sse response
// into OpenAI chat.completion.chunk events.
func (t *translator) NewStream(info *provider.StreamInfo) provider.Stream {
	return gemini.NewStream(info, now().Unix())
}
