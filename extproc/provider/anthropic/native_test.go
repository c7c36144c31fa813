package anthropic

import (
	"testing"

	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

// TestNativeGolden: testdata/native holds Messages requests, responses and
// streams as Anthropic documents them; see golden.NativeSuite.
func TestNativeGolden(t *testing.T) {
	(&golden.NativeSuite{Translator: newTestTranslator(t), StreamSuffix: ".in.sse"}).Run(t)
}

func TestNativeServes(t *testing.T) {
	tr := newTestTranslator(t)
	for _, c := range []struct {
		e     provider.Endpoint
		model string
		want  bool
	}{
		{provider.EndpointMessages, "claude-sonnet-4-5", true},
		{provider.EndpointMessages, "anything", true},
		{provider.EndpointChat, "claude-sonnet-4-5", false},
		{provider.EndpointResponses, "claude-sonnet-4-5", false},
		{provider.EndpointEmbeddings, "claude-sonnet-4-5", false},
	} {
		if got := tr.Serves(c.e, c.model); got != c.want {
			t.Errorf("Serves(%s, %q) = %v, want %v", c.e, c.model, got, c.want)
		}
	}
}
