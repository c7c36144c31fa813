package runtime

import (
	"slices"
	"testing"

	"github.com/weir-ai/weir/config"
)

func TestUnpriced(t *testing.T) {
	const base = `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "http://127.0.0.1:1/v1"}
  - {name: vllm, provider: openai, base_url: "http://127.0.0.1:2/v1"}
models:
  - {name: gpt-4o-mini, aliases: [fake-openai], backends: [oa]}
  - {name: my-finetune, backends: [oa]}
  - {name: local, backends: [vllm], provider_model: llama-3-70b}
  - {name: "openai/*", backends: [oa]}
  - {name: "vllm/*", backends: [vllm]}
`
	tests := []struct {
		name    string
		extra   string
		want    []Unpriced
		wantAll bool // fallback configured
	}{
		{"no overrides", "", []Unpriced{
			{Model: "my-finetune", Backend: "oa", Upstream: "my-finetune"},
			{Model: "local", Backend: "vllm", Upstream: "llama-3-70b"},
			{Model: "openai/*", Backend: "oa", Wildcard: true},
			{Model: "vllm/*", Backend: "vllm", Wildcard: true},
		}, false},
		{"backend-wide and model overrides", `
pricing:
  - {backend: vllm, input: 0.1, output: 0.1}
  - {provider: openai, model: my-finetune, input: 1, output: 2}
`, []Unpriced{{Model: "openai/*", Backend: "oa", Wildcard: true}}, false},
		// A fallback prices them, but they are still listed: the warning
		// says they are charged the fallback.
		{"fallback", `
pricing:
  - {model: "*", input: 30, output: 60}
`, []Unpriced{
			{Model: "my-finetune", Backend: "oa", Upstream: "my-finetune"},
			{Model: "local", Backend: "vllm", Upstream: "llama-3-70b"},
			{Model: "openai/*", Backend: "oa", Wildcard: true},
			{Model: "vllm/*", Backend: "vllm", Wildcard: true},
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(base + tc.extra)
			cfg, err := config.Parse(raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := Compile(cfg, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := rt.Unpriced(); !slices.Equal(got, tc.want) {
				t.Errorf("Unpriced() =\n%+v\nwant\n%+v", got, tc.want)
			}
			if got := rt.Policy.Prices.HasFallback(); got != tc.wantAll {
				t.Errorf("HasFallback = %v, want %v", got, tc.wantAll)
			}
		})
	}
}

// The default config's models are all priced; only its wildcards are
// listed (the probe found vertex-* and bedrock-invoke-* free).
func TestDefaultConfigPriced(t *testing.T) {
	raw := config.DefaultYAML()
	cfg, err := config.Parse(raw, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Compile(cfg, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range rt.Unpriced() {
		got = append(got, u.Model)
		if !u.Wildcard {
			t.Errorf("default config model %s (upstream %s at %s) has no price", u.Model, u.Upstream, u.Backend)
		}
	}
	if want := []string{"openai/*", "anthropic/*", "gemini/*"}; !slices.Equal(got, want) {
		t.Errorf("unpriced %v, want %v", got, want)
	}
}
