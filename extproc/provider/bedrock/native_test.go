package bedrock

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

// TestNativeGolden: testdata/native holds Messages requests, responses and
// streams for InvokeModel and InvokeModelWithResponseStream; stream inputs
// list event stream frames (see frameSpec), each chunk's bytes compacted
// as Bedrock sends them. See golden.NativeSuite.
func TestNativeGolden(t *testing.T) {
	(&golden.NativeSuite{Translator: newTestTranslator(t), StreamSuffix: ".in.json", ReadStream: readNativeStream}).Run(t)
}

func readNativeStream(t testing.TB, path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var specs []frameSpec
	if err := json.Unmarshal(raw, &specs); err != nil {
		t.Fatal(err)
	}
	for i := range specs {
		if specs[i].Bytes != nil {
			var b bytes.Buffer
			if err := json.Compact(&b, specs[i].Bytes); err != nil {
				t.Fatal(err)
			}
			specs[i].Bytes = b.Bytes()
		}
	}
	return encodeFrames(t, specs)
}

func TestNativeServes(t *testing.T) {
	tr := newTestTranslator(t)
	for _, c := range []struct {
		e     provider.Endpoint
		model string
		want  bool
	}{
		{provider.EndpointMessages, "anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{provider.EndpointMessages, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{provider.EndpointMessages, "invoke:anthropic.claude-3-haiku-20240307-v1:0", true},
		{provider.EndpointMessages, "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", true},
		{provider.EndpointMessages, "amazon.nova-pro-v1:0", false},
		{provider.EndpointMessages, "invoke:meta.llama3-70b-instruct-v1:0", false},
		{provider.EndpointChat, "anthropic.claude-sonnet-4-5-20250929-v1:0", false},
		{provider.EndpointEmbeddings, "anthropic.claude-sonnet-4-5-20250929-v1:0", false},
	} {
		if got := tr.Serves(c.e, c.model); got != c.want {
			t.Errorf("Serves(%s, %q) = %v, want %v", c.e, c.model, got, c.want)
		}
	}
}
