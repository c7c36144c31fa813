// Package registry maps provider names to translator factories. It is the
// one list to extend when a provider folder is added.
package registry

import (
	"fmt"
	"sort"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/anthropic"
	"github.com/weir-ai/weir/extproc/provider/azure"
	"github.com/weir-ai/weir/extproc/provider/bedrock"
	"github.com/weir-ai/weir/extproc/provider/gemini"
	"github.com/weir-ai/weir/extproc/provider/openai"
	"github.com/weir-ai/weir/extproc/provider/vertex"
)

var factories = map[config.Provider]provider.Factory{
	"openai":    openai.New,
	"anthropic": anthropic.New,
	"bedrock":   bedrock.New,
	"azure":     azure.New,
	"gemini":    gemini.New,
	"vertex":    vertex.New,
}

// New builds the translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	f, ok := factories[b.Provider]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %v)", b.Provider, Names())
	}
	return f(b)
}

// Names lists the known provider names, sorted.
func Names() []string {
	n := make([]string, 0, len(factories))
	for k := range factories {
		n = append(n, string(k))
	}
	sort.Strings(n)
	return n
}
