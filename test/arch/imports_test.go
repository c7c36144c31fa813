// Package arch holds the architecture rules as a test: the import graph of
// the production build (no build tags, no test files) must keep the shape
// README's layout promises, so a rule breaks a build instead of waiting
// for a reviewer to notice.
package arch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/weir-ai/weir/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// graph lists every package of the module as the production build sees
// it: `go list` without -test and without tags, so `weir dev` (-tags dev)
// and test helpers are out of it.
func graph(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", mod+"...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := map[string]*pkg{}
	for d := json.NewDecoder(bytes.NewReader(out)); d.More(); {
		p := new(pkg)
		if err := d.Decode(p); err != nil {
			t.Fatal(err)
		}
		g[strings.TrimPrefix(p.ImportPath, mod)] = p
	}
	if len(g) < 20 {
		t.Fatalf("go list found %d packages; the test is looking in the wrong place", len(g))
	}
	return g
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// translators are the provider packages the registry wires in: one folder
// per provider. Found from the registry, so a new provider is covered
// without editing this test.
func translators(g map[string]*pkg) map[string]bool {
	out := map[string]bool{}
	for _, imp := range g["extproc/provider/registry"].Imports {
		p := strings.TrimPrefix(imp, mod)
		switch p {
		case "extproc/provider", "extproc/provider/credsource":
			continue
		}
		if strings.HasPrefix(p, "extproc/provider/") {
			out[p] = true
		}
	}
	return out
}

// translatorDebt lists imports between translators (or from an ingress
// into a translator) still waiting to move into extproc/schema. The test
// fails on any other such import, and on an entry here that is no longer
// needed, so this list can only shrink. Issue 11 emptied it.
var translatorDebt = map[string][]string{}

// keyAdmin is the key admin API: an HTTP control API that writes the key
// store the data plane reads. It is the one controller package that may
// use extproc's packages (the store, the spend book and the types they
// hold), and no data-plane package may use it.
const keyAdmin = "controller/keyadmin"

// spendStatus reads the budget counters for VirtualKey and Budget status;
// their names are extproc/limits' planner's, defined once there.
const spendStatus = "controller/spendstatus"

func TestImportRules(t *testing.T) {
	g := graph(t)
	tr := translators(g)
	if len(tr) < 6 {
		t.Fatalf("found translators %v; want the six providers", tr)
	}
	for _, s := range []string{"extproc/schema/openai", "extproc/schema/messages", "extproc/schema/gemini"} {
		if g[s] == nil {
			t.Fatalf("schema package %s not found; the schema rule would check nothing", s)
		}
	}
	var broken []string
	rule := func(format string, args ...any) { broken = append(broken, fmt.Sprintf(format, args...)) }
	usedDebt := map[string]bool{}
	for path, p := range g {
		for _, dep := range p.Deps {
			d, ours := strings.CutPrefix(dep, mod)
			switch {
			case under(path, "config") && (strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/")):
				rule("config knows nothing of Kubernetes: %s depends on %s", path, dep)
			case ours && under(path, "extproc") && !under(path, "extproc/cmd") && under(d, keyAdmin):
				rule("the data plane does not use the key admin API (a control API; extproc/cmd wires it): %s depends on %s", path, d)
			case ours && under(path, "extproc") && !under(path, "extproc/cmd") && under(d, "controller"):
				rule("extproc outside cmd does not use the controller: %s depends on %s", path, d)
			case ours && under(path, spendStatus) && under(d, "extproc") && d != "extproc/limits" && d != "extproc/budget" && d != "extproc/errs":
				rule("the spend status reader uses only the counters' layout (extproc/limits, extproc/budget): %s depends on %s", path, d)

			case ours && under(path, keyAdmin) && (d == "extproc" || under(d, "extproc/cmd") || under(d, "extproc/daemon")):
				rule("the key admin API uses the key store, not the extproc server: %s depends on %s", path, d)
			case ours && under(path, "api") && under(d, "extproc"):
				rule("api does not import extproc: %s depends on %s", path, d)
			case ours && under(path, "extproc/schema") && (tr[d] || under(d, "extproc/ingress")):
				rule("a schema package uses no translator or ingress: %s depends on %s (translators and ingresses import the wire formats, not the reverse)", path, d)
			case ours && !under(path, "test") && under(d, "test"):
				rule("production code does not link test/: %s depends on %s", path, d)
			case !under(path, "test") && strings.HasPrefix(dep, "sigs.k8s.io/controller-runtime/pkg/envtest"):
				// It starts kube-apiserver and etcd binaries; a controller links
				// controller-runtime, never its test harness.
				rule("production code does not link envtest (test/envtest wraps it for tests): %s depends on %s", path, dep)
			}
		}
		// The controller reaches extproc code only through the packages
		// that exist for it, each with its own rule above: the key admin
		// API, the spend reader, and the command's backend check (the
		// provider registry, as extproc/cmd wires the key admin API).
		for _, imp := range p.Imports {
			d, ours := strings.CutPrefix(imp, mod)
			if !ours || !under(path, "controller") || !under(d, "extproc") || under(path, keyAdmin) || under(path, spendStatus) {
				continue
			}
			if under(path, "controller/cmd") && (d == "extproc/provider/registry" || d == "extproc/provider/credsource") {
				continue
			}
			rule("the controller does not use extproc (only %s, for the key store, %s, for the budget counters, and controller/cmd, for the provider registry's backend check): %s imports %s", keyAdmin, spendStatus, path, d)
		}
		for _, imp := range p.Imports {
			d, ours := strings.CutPrefix(imp, mod)
			if !ours || !tr[d] || path == d || !(tr[path] || under(path, "extproc/ingress")) {
				continue
			}
			if slices.Contains(translatorDebt[path], d) {
				usedDebt[path+" -> "+d] = true
				continue
			}
			rule("a translator or ingress does not import a translator: %s imports %s (shared wire formats belong in a schema package)", path, d)
		}
	}
	for path, deps := range translatorDebt {
		for _, d := range deps {
			if !usedDebt[path+" -> "+d] {
				rule("translatorDebt lists %s -> %s, which is gone: delete the entry", path, d)
			}
		}
	}
	slices.Sort(broken)
	for _, b := range broken {
		t.Error(b)
	}
}
