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

// A provider is a translator factory and the client request headers the
// provider gets by default (a backend's forward_headers add to them).
type entry struct {
	new     provider.Factory
	forward []string
}

var factories = map[config.Provider]entry{
	"openai":    {openai.New, provider.DefaultForwardHeaders},
	"anthropic": {anthropic.New, provider.DefaultForwardHeaders},
	"bedrock":   {bedrock.New, bedrock.ForwardHeaders},
	"azure":     {azure.New, provider.DefaultForwardHeaders},
	"gemini":    {gemini.New, provider.DefaultForwardHeaders},
	"vertex":    {vertex.New, provider.DefaultForwardHeaders},
}

// New builds the translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	f, ok := factories[b.Provider]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %v)", b.Provider, Names())
	}
	return f.new(b)
}

// ForwardHeaders returns the client request headers a provider gets by
// default; nil for an unknown provider. The slice is shared: do not modify.
func ForwardHeaders(p config.Provider) []string { return factories[p].forward }

// Names lists the known provider names, sorted.
func Names() []string {
	n := make([]string, 0, len(factories))
	for k := range factories {
		n = append(n, string(k))
	}
	sort.Strings(n)
	return n
}
