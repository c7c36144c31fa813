package route

import (
	"testing"

	"github.com/weir-ai/weir/config"
)

func TestResolve(t *testing.T) {
	tbl := New([]config.Model{
		{Name: "gpt-4o", Aliases: []string{"default"}, Backends: []string{"a"}},
		{Name: "claude", ProviderModel: "claude-sonnet-4-5-20250929", Backends: []string{"b"}},
		{Name: "openai/*", Backends: []string{"a"}},
		{Name: "openai/o1*", Backends: []string{"c"}},
		{Name: "pinned/*", ProviderModel: "fixed", Backends: []string{"c"}},
	})
	tests := []struct {
		in          string
		ok          bool
		backend, up string
		limit       string // the name per-model limits match
	}{
		{"gpt-4o", true, "a", "gpt-4o", "gpt-4o"},
		{"gpt-4o-mini", false, "", "", ""},
		{"default", true, "a", "gpt-4o", "gpt-4o"},
		{"claude", true, "b", "claude-sonnet-4-5-20250929", "claude"},
		{"openai/gpt-4.1", true, "a", "gpt-4.1", "gpt-4.1"},
		{"openai/o1-mini", true, "c", "o1-mini", "o1-mini"},
		{"pinned/anything", true, "c", "fixed", "fixed"},
		{"openai/", false, "", "", ""},
		{"unknown", false, "", "", ""},
		{"", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := tbl.Resolve(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got.Backends[0] != tt.backend || got.UpstreamModel != tt.up {
				t.Errorf("got backend %q model %q, want %q %q", got.Backends[0], got.UpstreamModel, tt.backend, tt.up)
			}
			if l := got.LimitName(); l != tt.limit {
				t.Errorf("LimitName() = %q, want %q", l, tt.limit)
			}
		})
	}
}
