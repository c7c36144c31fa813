package keys

import (
	"testing"

	"github.com/weir-ai/weir/extproc/vkey"
)

// TestKeysTheExtprocAccepts: a key NewKey issues is read by the extproc's
// own parser, and Hash gives the hash the extproc computes from it, so a
// key issued into a Secret authenticates against the config the
// controller ships.
func TestKeysTheExtprocAccepts(t *testing.T) {
	if KeyPrefix != vkey.Prefix {
		t.Fatalf("KeyPrefix %q, extproc's %q", KeyPrefix, vkey.Prefix)
	}
	seen := map[string]bool{}
	for range 100 {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if seen[k] {
			t.Fatalf("NewKey repeated %s", k)
		}
		seen[k] = true
		s, err := vkey.FromHeaders("Bearer "+k, "")
		if err != nil {
			t.Fatalf("extproc refuses issued key: %v", err)
		}
		if got := s.Hash().String(); got != Hash(k) {
			t.Fatalf("hash %s, extproc's %s", Hash(k), got)
		}
	}
}
