package translate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/runtime"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output and delete orphans")

// TestGolden translates every testdata/<case>.in.yaml and compares the
// config and statuses with <case>.out.yaml. A new input is a new case;
// `make generate` rewrites the outputs.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs (%v)", err)
	}
	// Bedrock without static keys would ask the EC2 metadata service.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	want := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		out := filepath.Join("testdata", name+".out.yaml")
		want[out] = true
		t.Run(name, func(t *testing.T) {
			input := loadInput(t, in)
			res := Translate(input)
			compiles(t, res.Config)
			got := render(t, res)
			if again := render(t, Translate(loadInput(t, in))); !bytes.Equal(got, again) {
				t.Fatal("Translate is not deterministic")
			}
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test ./controller/translate -update)", err)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("%s differs; run go test ./controller/translate -run TestGolden -update and review the diff\ngot:\n%s", out, got)
			}
		})
	}
	outs, _ := filepath.Glob("testdata/*.out.yaml")
	for _, o := range outs {
		switch {
		case want[o]:
		case *update:
			if err := os.Remove(o); err != nil {
				t.Error(err)
			}
		default:
			t.Errorf("orphan %s: its input is gone (run with -update to delete it)", o)
		}
	}
}

// compiles checks that the data plane accepts cfg as a replica would:
// Validate checks syntax, Compile what only the extproc knows (providers
// and their options, the auth policy). The controller does not link the
// extproc; its tests may.
func compiles(t *testing.T, cfg *config.Config) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid config: %v", err)
	}
	rt, err := runtime.Compile(cfg, nil, nil)
	if err != nil {
		t.Fatalf("the extproc refuses the config: %v", err)
	}
	rt.Release()
}

type goldenOut struct {
	Config *config.Config `yaml:"config"`
	Status []goldenStatus `yaml:"status"`
}

type goldenStatus struct {
	Object             string            `yaml:"object"`
	ObservedGeneration int64             `yaml:"observedGeneration"`
	Conditions         []goldenCondition `yaml:"conditions"`
}

type goldenCondition struct {
	Type    string `yaml:"type"`
	Status  string `yaml:"status"`
	Reason  string `yaml:"reason"`
	Message string `yaml:"message"`
}

// render is the golden form of an Output: the config (secrets redacted)
// and the statuses sorted by kind, namespace and name. Condition times
// are the input's Now, so they are left out.
func render(t *testing.T, out Output) []byte {
	t.Helper()
	g := goldenOut{Config: out.Config}
	for obj, st := range out.Status {
		s := goldenStatus{Object: obj.Kind + " " + strings.TrimPrefix(obj.Namespace+"/"+obj.Name, "/"), ObservedGeneration: st.ObservedGeneration}
		for _, c := range st.Conditions {
			s.Conditions = append(s.Conditions, goldenCondition{c.Type, string(c.Status), c.Reason, c.Message})
		}
		g.Status = append(g.Status, s)
	}
	slices.SortFunc(g.Status, func(a, b goldenStatus) int { return strings.Compare(a.Object, b.Object) })
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
