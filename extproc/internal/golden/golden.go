// Package golden holds the golden-file helpers the translator tests share:
// every provider and ingress compares its outputs with files under its
// testdata, rewritten with -update.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Update is the -update flag: rewrite golden files instead of comparing.
var Update = flag.Bool("update", false, "rewrite golden files under testdata")

// Canonical re-encodes JSON with sorted keys and indentation so goldens are
// compared by meaning, not bytes. Test-only: production code never
// unmarshals bodies.
func Canonical(t testing.TB, b []byte) []byte {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// Check compares got with the golden file, by meaning for .json files and
// byte for byte otherwise (SSE, normalised by the caller), or rewrites it.
func Check(t *testing.T, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if strings.HasSuffix(path, ".json") {
		want = Canonical(t, want)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Inputs lists testdata/dir/*suffix, failing when there are none. Every
// other file in dir must belong to an input (the same name up to its first
// dot): an output whose input was deleted or renamed is an orphan that
// would never be checked again, so it is an error, and -update deletes it.
func Inputs(t testing.TB, dir, suffix string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+suffix))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs in testdata/%s: %v", dir, err)
	}
	stems := make(map[string]bool, len(files))
	for _, f := range files {
		stems[stem(filepath.Base(f))] = true
	}
	all, err := os.ReadDir(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.IsDir() || stems[stem(e.Name())] {
			continue
		}
		p := filepath.Join("testdata", dir, e.Name())
		if *Update {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("orphan golden file %s: no input %s%s (run with -update to delete it)", p, stem(e.Name()), suffix)
	}
	return files
}

// stem is a testdata file's name up to its first dot: X for X.in.json,
// X.out.json and X.usage.json.
func stem(name string) string {
	s, _, _ := strings.Cut(name, ".")
	return s
}

// JSONField marshals v for embedding in a golden record.
func JSONField(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
