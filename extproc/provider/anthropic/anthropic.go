// Package anthropic translates between OpenAI chat completions and
// Anthropic's Messages API. (Work in progress: being filled in.)
package anthropic

import (
	"fmt"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

type translator struct{}

// New builds an Anthropic translator.
func New(b *config.Backend) (provider.Translator, error) { return translator{}, nil }

func (translator) TranslateRequest(*provider.Request) (*provider.Upstream, error) {
	return nil, fmt.Errorf("%w: anthropic", errs.ErrUnsupported)
}
func (translator) TranslateResponse(*provider.Response) ([]byte, provider.Usage, error) {
	return nil, provider.Usage{}, nil
}
func (translator) NewStream(*provider.StreamInfo) provider.Stream { return nil }
