package vertex

import (
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

// TestNativeGolden: testdata/native holds Messages requests, responses and
// streams for rawPredict; see golden.NativeSuite.
func TestNativeGolden(t *testing.T) {
	(&golden.NativeSuite{Translator: newStaticToken(t), StreamSuffix: ".in.sse"}).Run(t)
}

// newStaticToken is a translator whose credential is an access token
// minted elsewhere, so requests carry a fixed Authorization header.
func newStaticToken(t testing.TB) *translator {
	t.Helper()
	tr, err := New(&config.Backend{Name: "vx", Provider: "vertex", BaseURL: "https://us-east5-aiplatform.googleapis.com",
		Credential: &config.Credential{Key: "ya29.test-token"},
		Options:    map[string]string{"project": "my-proj", "location": "us-east5"}})
	if err != nil {
		t.Fatal(err)
	}
	return tr.(*translator)
}

func TestNativeServes(t *testing.T) {
	tr := newKeyless(t)
	for _, c := range []struct {
		e     provider.Endpoint
		model string
		want  bool
	}{
		{provider.EndpointMessages, "claude-sonnet-4-5@20250929", true},
		{provider.EndpointMessages, "models/claude-3-5-haiku@20241022", true},
		{provider.EndpointMessages, "gemini-2.5-pro", false},
		{provider.EndpointMessages, "text-embedding-005", false},
		{provider.EndpointChat, "claude-sonnet-4-5@20250929", false},
		{provider.EndpointEmbeddings, "claude-sonnet-4-5@20250929", false},
	} {
		if got := tr.Serves(c.e, c.model); got != c.want {
			t.Errorf("Serves(%s, %q) = %v, want %v", c.e, c.model, got, c.want)
		}
	}
}
