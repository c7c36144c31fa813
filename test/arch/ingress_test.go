package arch

import (
	"strings"
	"testing"
)

// TestIngressesOnlyThroughTheRegistry: the router never knows which
// ingress it serves. Ingress adapters (extproc/ingress/<format>) are
// reached through the registry, which picks one by path, and through the
// ingress.Adapter interface; nothing else imports them.
func TestIngressesOnlyThroughTheRegistry(t *testing.T) {
	g := graph(t)
	adapters := 0
	for path := range g {
		if under(path, "extproc/ingress") && path != "extproc/ingress" && path != "extproc/ingress/registry" {
			adapters++
		}
	}
	if adapters < 2 {
		t.Fatalf("found %d ingress adapters; want OpenAI's and Anthropic's at least", adapters)
	}
	for path, p := range g {
		if under(path, "extproc/ingress") {
			continue
		}
		for _, imp := range p.Imports {
			d, ours := strings.CutPrefix(imp, mod)
			if !ours || !under(d, "extproc/ingress") || d == "extproc/ingress" || d == "extproc/ingress/registry" {
				continue
			}
			// The router writes a canonical stream's errors in the
			// canonical format, which is OpenAI's: that is the one
			// adapter it may name.
			if path == "extproc" && d == "extproc/ingress/openai" {
				continue
			}
			t.Errorf("%s imports the ingress adapter %s: reach it through extproc/ingress/registry", path, d)
		}
	}
}
