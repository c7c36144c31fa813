package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// recorder keeps what a test reported instead of failing the real one.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestInputsOrphans: an output left without its input is reported, and
// deleted under -update; outputs with an input are not.
func TestInputsOrphans(t *testing.T) {
	for _, update := range []bool{false, true} {
		t.Run(fmt.Sprint("update=", update), func(t *testing.T) {
			t.Chdir(t.TempDir())
			dir := filepath.Join("testdata", "request")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"a.in.json", "a.out.json", "a.usage.json", "gone.out.json"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			*Update = update
			defer func() { *Update = false }()
			r := &recorder{TB: t}
			in := Inputs(r, "request", ".in.json")
			if !slices.Equal(in, []string{filepath.Join(dir, "a.in.json")}) {
				t.Errorf("inputs %v", in)
			}
			_, err := os.Stat(filepath.Join(dir, "gone.out.json"))
			switch {
			case update && (len(r.errs) != 0 || !os.IsNotExist(err)):
				t.Errorf("update: errors %v, orphan stat %v; want it deleted quietly", r.errs, err)
			case !update && (len(r.errs) != 1 || err != nil):
				t.Errorf("check: errors %v, orphan stat %v; want one error and the file kept", r.errs, err)
			}
		})
	}
}
