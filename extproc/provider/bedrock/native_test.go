package bedrock

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// FuzzNativeStream: any event stream bytes and chunk payloads, whole or
// split, give no panic and the same output, usage and end.
func FuzzNativeStream(f *testing.F) {
	for _, p := range func() []string { m, _ := filepath.Glob("testdata/native/stream/*.in.json"); return m }() {
		f.Add(readNativeStream(f, p), []byte(nil), 9)
	}
	f.Add([]byte(nil), []byte(`{"type":"message_start","message":{"model":"x"}}`), 0)
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, in, event []byte, cut int) {
		if len(event) > 0 {
			// A chunk frame around arbitrary bytes, after the input.
			in = append(bytes.Clone(in), encodeFrames(t, []frameSpec{{Bytes: event}})...)
		}
		info := &provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "my-claude"}
		run := func(cuts ...int) ([]byte, provider.Usage, bool) {
			s := tr.NewStream(info)
			var out []byte
			var err error
			prev := 0
			for _, c := range cuts {
				if out, err = s.Translate(out, in[prev:c], false); err != nil {
					return out, s.Usage(), false
				}
				prev = c
			}
			out, err = s.Translate(out, in[prev:], true)
			return out, s.Usage(), err == nil
		}
		if cut < 0 {
			cut = -cut
		}
		cut %= len(in) + 1
		o1, u1, ok1 := run()
		o2, u2, ok2 := run(cut)
		if ok1 && ok2 && (!bytes.Equal(o1, o2) || u1 != u2) {
			t.Fatalf("split at %d differs\n%q\n%q", cut, o1, o2)
		}
	})
}
