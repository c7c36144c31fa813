// Package anthropic is the translator for Anthropic's Messages API (POST
// /v1/messages): the x-api-key credential, the anthropic-version header and
// the rate-limit headers. The bodies, OpenAI chat completions to Messages
// and back, are extproc/schema/messages, shared with the translators that
// carry the same format (Bedrock InvokeModel, Vertex rawPredict).
package anthropic

import (
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
)

// Version is the anthropic-version header sent upstream.
const Version = "2023-06-01"

// now is the clock for "created" fields and rate-limit resets; tests
// replace it.
var now = time.Now

type translator struct {
	headers []provider.Header
}

// New builds an Anthropic translator for a backend.
func New(b *config.Backend) (provider.Translator, error) {
	t := &translator{}
	if b != nil && b.Credential != nil && b.Credential.Key != "" {
		t.headers = append(t.headers, provider.Header{Key: "x-api-key", Value: b.Credential.Key.Reveal()})
	}
	t.headers = append(t.headers,
		provider.Header{Key: "anthropic-version", Value: Version},
		provider.Header{Key: "content-type", Value: "application/json"},
	)
	t.headers = t.headers[:len(t.headers):len(t.headers)]
	return t, nil
}

var (
	_ provider.Translator       = (*translator)(nil)
	_ provider.HeaderTranslator = (*translator)(nil)
)
