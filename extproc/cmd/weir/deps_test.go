package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The production binary must not link the development data plane, the
// fake providers or anything else under test/; `-tags dev` must.
func TestProductionBuildLinksNoTestPackages(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	const testTree = "github.com/weir-ai/weir/test/"
	// -tags is always explicit, so a -tags in GOFLAGS cannot change it.
	deps := func(tags string, prefixes ...string) []string {
		t.Helper()
		args := []string{"list", "-deps", "-tags=" + tags}
		cmd := exec.Command(gobin, append(args, ".")...)
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var found []string
		for _, p := range strings.Fields(string(out)) {
			for _, pre := range prefixes {
				if strings.HasPrefix(p, pre) {
					found = append(found, p)
				}
			}
		}
		return found
	}
	if got := deps("", testTree); len(got) > 0 {
		t.Errorf("the production weir binary links %v; keep test/ imports behind //go:build dev", got)
	}
	// Envoy's config API (the controller's renderer) stays out of the
	// extproc: registering its protobuf types kept ~10 MiB resident. The
	// key admin API is the one controller package the binary serves (on
	// its own listener); it links no Envoy config.
	got := slices.DeleteFunc(deps("", "github.com/weir-ai/weir/controller/", "github.com/envoyproxy/go-control-plane/envoy/config/listener/"),
		func(p string) bool { return p == "github.com/weir-ai/weir/controller/keyadmin" })
	if len(got) > 0 {
		t.Errorf("the production weir binary links %v; Envoy config rendering belongs in weirctl", got)
	}
	// The CRD types and Kubernetes' client libraries belong to the
	// controller: the extproc gets plain config (config/), and apimachinery
	// alone would add megabytes of binary and init-time registration.
	if got := deps("", "k8s.io/", "github.com/weir-ai/weir/api/"); len(got) > 0 {
		t.Errorf("the production weir binary links %v; Kubernetes types stay in the controller", got)
	}
	got = deps("dev", testTree)
	if !strings.Contains(strings.Join(got, " "), testTree+"devstack") {
		t.Errorf("-tags dev does not link %sdevstack (got %v): is `weir dev` still wired up?", testTree, got)
	}
}
