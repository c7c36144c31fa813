// Package registry maps request paths to ingress adapters: the one list
// to extend when an ingress folder is added.
package registry

import (
	"github.com/weir-ai/weir/extproc/ingress"
	"github.com/weir-ai/weir/extproc/ingress/anthropic"
	"github.com/weir-ai/weir/extproc/ingress/openai"
	"github.com/weir-ai/weir/extproc/provider"
)

// Registry resolves paths; build it with [New].
type Registry struct{ ops map[string]ingress.Op }

// New builds the registry.
func New() *Registry {
	oa := openai.Adapter{}
	an := anthropic.NewAdapter(anthropic.BPEEstimator{})
	ops := map[string]ingress.Op{
		"/v1/messages":              {Adapter: an, Endpoint: provider.EndpointMessages},
		"/v1/messages/count_tokens": {Adapter: an, Endpoint: provider.EndpointMessages, Count: true},
	}
	// OpenAI's SDKs take base URLs with or without /v1.
	for _, p := range []struct {
		path string
		e    provider.Endpoint
	}{
		{"/chat/completions", provider.EndpointChat},
		{"/embeddings", provider.EndpointEmbeddings},
		{"/completions", provider.EndpointCompletions},
		{"/responses", provider.EndpointResponses},
	} {
		ops[p.path] = ingress.Op{Adapter: oa, Endpoint: p.e}
		ops["/v1"+p.path] = ingress.Op{Adapter: oa, Endpoint: p.e}
	}
	return &Registry{ops: ops}
}

// ForPath returns the operation path (without query) asks for. An unknown
// path gets the OpenAI adapter, so that its 404 is in OpenAI's format, and
// false.
func (r *Registry) ForPath(path string) (ingress.Op, bool) {
	op, ok := r.ops[path]
	if !ok {
		return ingress.Op{Adapter: openai.Adapter{}}, false
	}
	return op, true
}
