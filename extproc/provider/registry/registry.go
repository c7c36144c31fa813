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
	"github.com/weir-ai/weir/extproc/provider/credsource"
	"github.com/weir-ai/weir/extproc/provider/gemini"
	"github.com/weir-ai/weir/extproc/provider/openai"
	"github.com/weir-ai/weir/extproc/provider/vertex"
)

// factory builds a translator; providers whose credentials are fetched
// and refreshed take them from the lease.
type factory func(b *config.Backend, creds *credsource.Lease) (provider.Translator, error)

// static adapts the factory of a provider whose credential is a fixed key.
func static(f provider.Factory) factory {
	return func(b *config.Backend, _ *credsource.Lease) (provider.Translator, error) { return f(b) }
}

// A provider is a translator factory and the client request headers the
// provider gets by default (a backend's forward_headers add to them).
type entry struct {
	new     factory
	forward []string
}

var factories = map[config.Provider]entry{
	"openai":    {static(openai.New), provider.DefaultForwardHeaders},
	"anthropic": {static(anthropic.New), provider.DefaultForwardHeaders},
	"bedrock":   {bedrock.NewShared, bedrock.ForwardHeaders},
	"azure":     {azure.NewShared, provider.DefaultForwardHeaders},
	"gemini":    {static(gemini.New), provider.DefaultForwardHeaders},
	"vertex":    {vertex.NewShared, provider.DefaultForwardHeaders},
}

// New builds the translator for a backend. Credential sources (token and
// AWS credential caches) come from creds, so that a reload keeps those of
// unchanged credentials; a nil lease gives the translator its own.
func New(b *config.Backend, creds *credsource.Lease) (provider.Translator, error) {
	f, ok := factories[b.Provider]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %v)", b.Provider, Names())
	}
	return f.new(b, creds)
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
