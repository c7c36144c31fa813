package translate

import (
	"regexp"
	"strings"
	"testing"
)

// The loops agree with the patterns config.Validate applies.
func TestHashAndLimitsIDMatchConfig(t *testing.T) {
	hexHash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	limitsID := regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	for _, s := range []string{
		"", "a", strings.Repeat("a", 64), strings.Repeat("A", 64), strings.Repeat("g", 64), strings.Repeat("0", 63), strings.Repeat("0", 65),
		"6f1c1b1e-0d7e-4a52-9b3c-5e0f5b2f6a01", "a:b", "a/b", "a.b_c-D", strings.Repeat("x", 128), strings.Repeat("x", 129), "é",
	} {
		if got, want := isHexHash(s), hexHash.MatchString(s); got != want {
			t.Errorf("isHexHash(%q) = %v", s, got)
		}
		if got, want := isLimitsID(s), limitsID.MatchString(s); got != want {
			t.Errorf("isLimitsID(%q) = %v", s, got)
		}
	}
}
