package xds

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bootstrap.yaml from the current output and delete orphans")

// TestGoldenBootstrap renders every testdata/<case>.in.yaml and compares it
// with <case>.bootstrap.yaml. A new input file is a new case.
func TestGoldenBootstrap(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	want := map[string]bool{}
	opts := Options{ExtProcAddress: "127.0.0.1:1063", AdminPort: 9901}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		out := filepath.Join("testdata", name+".bootstrap.yaml")
		want[out] = true
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(b, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			// Every golden config must also pass Envoy's proto validation.
			b0, err := Bootstrap(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			validateDeep(t, b0)
			got, err := BootstrapYAML(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			again, err := BootstrapYAML(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, again) {
				t.Fatal("BootstrapYAML is not deterministic")
			}
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("%s differs from output; run go test ./controller/xds -run TestGoldenBootstrap -update and review the diff\ngot:\n%s", out, got)
			}
		})
	}
	if *update {
		outs, _ := filepath.Glob("testdata/*.bootstrap.yaml")
		for _, o := range outs {
			if !want[o] {
				if err := os.Remove(o); err != nil {
					t.Error(err)
				}
			}
		}
	}
}
