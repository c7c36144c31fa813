package reload

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var applied []string
	var results []bool
	r := &Reloader{
		Path: path,
		Apply: func(raw []byte) error {
			if string(raw) == "bad" {
				return errors.New("bad config")
			}
			applied = append(applied, string(raw))
			return nil
		},
		Result: func(ok bool) { results = append(results, ok) },
	}
	write("v1")
	if err := r.Init(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		content     string
		wantChanged bool
		wantErr     bool
	}{
		{"v1", false, false},  // unchanged
		{"v2", true, false},   // changed
		{"bad", false, true},  // rejected, old config kept
		{"bad", false, false}, // same bad file is not retried every poll
		{"v3", true, false},   // fixed
	}
	for i, s := range steps {
		write(s.content)
		changed, err := r.Check()
		if changed != s.wantChanged || (err != nil) != s.wantErr {
			t.Fatalf("step %d (%q): changed=%v err=%v", i, s.content, changed, err)
		}
	}
	if got, want := applied, []string{"v1", "v2", "v3"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("applied = %v, want %v", got, want)
	}
	if got := results; len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Errorf("results = %v, want [true false true]", got)
	}
}
