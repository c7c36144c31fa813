package registry

import (
	"testing"

	"github.com/weir-ai/weir/extproc/provider"
)

func TestForPath(t *testing.T) {
	r := New()
	tests := []struct {
		path    string
		adapter string
		ep      provider.Endpoint
		count   bool
		known   bool
	}{
		{"/v1/chat/completions", "openai", provider.EndpointChat, false, true},
		{"/chat/completions", "openai", provider.EndpointChat, false, true},
		{"/v1/embeddings", "openai", provider.EndpointEmbeddings, false, true},
		{"/v1/completions", "openai", provider.EndpointCompletions, false, true},
		{"/v1/responses", "openai", provider.EndpointResponses, false, true},
		{"/v1/messages", "anthropic", provider.EndpointMessages, false, true},
		{"/v1/messages/count_tokens", "anthropic", provider.EndpointMessages, true, true},
		// Unknown paths answer in OpenAI's format.
		{"/v1/messages/batches", "openai", provider.EndpointUnknown, false, false},
		{"/v1/models", "openai", provider.EndpointUnknown, false, false},
		{"/", "openai", provider.EndpointUnknown, false, false},
	}
	for _, tt := range tests {
		op, known := r.ForPath(tt.path)
		if op.Adapter.Name() != tt.adapter || op.Endpoint != tt.ep || op.Count != tt.count || known != tt.known {
			t.Errorf("%s: %s %v count=%v known=%v", tt.path, op.Adapter.Name(), op.Endpoint, op.Count, known)
		}
	}
}
