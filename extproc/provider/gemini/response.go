package gemini

import (
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/gemini"
)

// TranslateResponse converts a generateContent or embeddings response (or
// a Gemini error) into OpenAI's shape.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	return gemini.TranslateResponse(resp, now().Unix())
}
