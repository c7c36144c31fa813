package translate

import (
	"slices"
	"testing"

	"github.com/weir-ai/weir/extproc/vkey"
)

// TestGrant checks the key model list against the data plane's own
// matcher (vkey.ModelAllowed): allow lists what the key must reach, deny
// what it must not, whatever the list's spelling.
func TestGrant(t *testing.T) {
	tests := []struct {
		name   string
		key    []string // spec.models
		served []string // names, aliases and patterns of the key's routes
		want   []string
		allow  []string
		deny   []string
	}{
		{
			name:   "empty key list means every model of its routes",
			served: []string{"gpt-4o", "smart", "openai/*"},
			want:   []string{"gpt-4o", "openai/*", "smart"},
			allow:  []string{"gpt-4o", "smart", "openai/o1"},
			deny:   []string{"claude", "openai/", "anthropic/x"},
		},
		{
			name:   "exact names intersect",
			key:    []string{"gpt-4o", "claude"},
			served: []string{"gpt-4o", "smart"},
			want:   []string{"gpt-4o"},
			allow:  []string{"gpt-4o"},
			deny:   []string{"claude", "smart"},
		},
		{
			name:   "key star is bounded by its routes",
			key:    []string{"*"},
			served: []string{"gpt-4o", "anthropic/*"},
			want:   []string{"anthropic/*", "gpt-4o"},
			allow:  []string{"gpt-4o", "anthropic/claude"},
			deny:   []string{"llama", "openai/gpt-4o"},
		},
		{
			name:   "key pattern keeps the route names under it",
			key:    []string{"openai/*"},
			served: []string{"openai/gpt-4o", "anthropic/claude", "gpt-4o"},
			want:   []string{"openai/gpt-4o"},
			allow:  []string{"openai/gpt-4o"},
			deny:   []string{"openai/o1", "anthropic/claude", "gpt-4o"},
		},
		{
			name:   "key name under a route pattern",
			key:    []string{"openai/gpt-4o", "anthropic/claude"},
			served: []string{"openai/*"},
			want:   []string{"openai/gpt-4o"},
			allow:  []string{"openai/gpt-4o"},
			deny:   []string{"openai/o1", "anthropic/claude"},
		},
		{
			name:   "narrower key pattern under a route pattern",
			key:    []string{"openai/ft/*"},
			served: []string{"openai/*"},
			want:   []string{"openai/ft/*"},
			allow:  []string{"openai/ft/x"},
			deny:   []string{"openai/gpt-4o"},
		},
		{
			name:   "narrower route pattern under a key pattern",
			key:    []string{"openai/*"},
			served: []string{"openai/ft/*"},
			want:   []string{"openai/ft/*"},
			allow:  []string{"openai/ft/x"},
			deny:   []string{"openai/gpt-4o"},
		},
		{
			name:   "catch-all route under a key pattern",
			key:    []string{"openai/*", "gpt-4o"},
			served: []string{"*"},
			want:   []string{"gpt-4o", "openai/*"},
			allow:  []string{"gpt-4o", "openai/x"},
			deny:   []string{"claude"},
		},
		{
			name:   "catch-all route, empty key list",
			served: []string{"*"},
			want:   []string{"*"},
			allow:  []string{"anything"},
		},
		{
			// The data plane matches "gpt-*" in a key list as an exact
			// name, so it grants nothing here.
			name:   "key prefix without a slash is an exact name",
			key:    []string{"gpt-*"},
			served: []string{"gpt-4o"},
			want:   []string{noModel},
			deny:   []string{"gpt-4o", "gpt-*x"},
		},
		{
			// ModelAllowed cannot say "gpt-*": whole pattern not granted,
			// but a name the key lists under it is.
			name:   "route pattern without a slash grants only listed names",
			key:    []string{"gpt-4o"},
			served: []string{"gpt-*"},
			want:   []string{"gpt-4o"},
			allow:  []string{"gpt-4o"},
			deny:   []string{"gpt-5"},
		},
		{
			name:   "route pattern without a slash, empty key list",
			served: []string{"gpt-*", "claude"},
			want:   []string{"claude"},
			allow:  []string{"claude"},
			deny:   []string{"gpt-4o"},
		},
		{
			name:   "nothing in common means no model at all",
			key:    []string{"claude"},
			served: []string{"gpt-4o"},
			want:   []string{noModel},
			deny:   []string{"gpt-4o", "claude", "*", "x"},
		},
		{
			name: "no usable route means no model at all",
			want: []string{noModel},
			deny: []string{"gpt-4o", "*"},
		},
		{
			name:   "a name the route pattern needs more of is not granted",
			key:    []string{"openai/"},
			served: []string{"openai/*"},
			want:   []string{noModel},
			deny:   []string{"openai/", "openai/x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := grant(tt.key, tt.served)
			if !slices.Equal(got, tt.want) {
				t.Errorf("grant(%q, %q) = %q, want %q", tt.key, tt.served, got, tt.want)
			}
			for _, m := range tt.allow {
				if !vkey.ModelAllowed(got, m) {
					t.Errorf("%q is refused by %q", m, got)
				}
			}
			for _, m := range tt.deny {
				if vkey.ModelAllowed(got, m) {
					t.Errorf("%q is allowed by %q", m, got)
				}
			}
		})
	}
}

// The "no model" list refuses every name a client can send: the parse
// stage refuses an empty model before the key is checked.
func TestNoModelRefusesEverything(t *testing.T) {
	for _, m := range []string{"gpt-4o", "*", "openai/*", " ", "\x00"} {
		if vkey.ModelAllowed([]string{noModel}, m) {
			t.Errorf("%q allowed", m)
		}
	}
	// Any other name is one a client can send, and a catch-all route
	// ("*") would then serve it.
	if vkey.ModelAllowed([]string{noModel}, noModel) && noModel != "" {
		t.Errorf("a client can send %q and be allowed", noModel)
	}
	if !vkey.ModelAllowed(nil, "gpt-4o") {
		t.Fatal("an empty list no longer means every model: grant's sentinel is not needed, revisit it")
	}
}
