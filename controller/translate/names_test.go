package translate

import (
	"strings"
	"testing"
)

func TestBackendName(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		ns, route, backend string
		wantPrefix         string
	}{
		{"ai-platform", "chat", "openai", "ai-platform-chat-openai-"},
		{"team-a", "chat.v2", "vllm", "team-a-chat-v2-vllm-"},
		{long, long, long, strings.Repeat("a", 52)[:52]},
		{"a", "b-c", "d", "a-b-c-d-"},
		{"a-b", "c", "d", "a-b-c-d-"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := backendName(tt.ns, tt.route, tt.backend)
		id := tt.ns + "/" + tt.route + "/" + tt.backend
		if !isDNSLabel(got) {
			t.Errorf("%s: %q is not a DNS label", id, got)
		}
		if !strings.HasPrefix(got, tt.wantPrefix) {
			t.Errorf("%s: %q does not start with %q", id, got, tt.wantPrefix)
		}
		if again := backendName(tt.ns, tt.route, tt.backend); again != got {
			t.Errorf("%s: not deterministic: %q then %q", id, got, again)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%s and %s both named %q", prev, id, got)
		}
		seen[got] = id
	}
}

func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
