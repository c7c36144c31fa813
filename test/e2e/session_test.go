package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// withSession adds limits.session to a store's limits section.
func withSession(storeYAML, session string) string {
	if storeYAML == "" {
		return "limits: {session: " + session + "}\n"
	}
	return strings.Replace(storeYAML, "limits: {", "limits: {session: "+session+", ", 1)
}

// TestSessionBudget: two sessions of one key run interleaved; one reaches
// its session budget and is refused with a 429 that names it while the
// other keeps being served. The same session id under another key is
// another session, a request without the header is no session's, and a
// bad header value is a 400. A config key is named by its key_name,
// "hash:" and the start of its hash (the config never holds the secret). At 16 µ$ a request (exact usage, $1 per
// million output tokens), a 40 µ$ session budget admits two.
func TestSessionBudget(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			a, aH := newKey(t)
			b, bH := newKey(t)
			g := startGateway(t, limitsBase+withSession(st.yaml(t), "{header: x-session-id, ttl: 1h, max_budget: 0.00004}")+fmt.Sprintf(`
pricing:
  - {backend: oa, input: 0, output: 1}
auth:
  keys:
    - {hash: %s}
    - {hash: %s}
`, aH, bH), st.replicas)
			ok := refusal{status: 200}
			reached := func(session, key string) refusal {
				return refusal{429, "budget_exceeded", true, "budget exceeded: session " + session + " of key " + key + " reached its budget of $0.00004"}
			}
			badChars := refusal{400, "invalid_request", false, "header x-session-id must be visible ASCII characters"}
			tooLong := refusal{400, "invalid_request", false, "header x-session-id must be 1 to 128 characters, got 129"}
			steps := []struct {
				key, session string
				want         refusal
			}{
				{a.Reveal(), "loop-1", ok},
				{a.Reveal(), "calm-2", ok},
				{a.Reveal(), "loop-1", ok},
				{a.Reveal(), "loop-1", reached("loop-1", "hash:"+aH[:12])},
				{a.Reveal(), "loop-1", reached("loop-1", "hash:"+aH[:12])},
				// The other session of the same key is still served.
				{a.Reveal(), "calm-2", ok},
				// Same session id, another key: its own counters.
				{b.Reveal(), "loop-1", ok},
				{b.Reveal(), "loop-1", ok},
				{b.Reveal(), "loop-1", reached("loop-1", "hash:"+bH[:12])},
				// No header: only the key's limits (none) apply.
				{a.Reveal(), "", ok},
				{a.Reveal(), "", ok},
				{a.Reveal(), "", ok},
				{a.Reveal(), "a b", badChars},
				{a.Reveal(), strings.Repeat("x", 129), tooLong},
				{a.Reveal(), strings.Repeat("x", 128), ok},
			}
			served := 0
			for i, s := range steps {
				hdr := map[string]string{"x-fake-behavior": "exact-usage"}
				if s.session != "" {
					hdr["x-session-id"] = s.session
				}
				resp, body := chat(t, g.URL, s.key, "gpt-4o-mini", hdr)
				checkResponse(t, fmt.Sprintf("step %d (session %q)", i, s.session), resp.StatusCode, resp.Header.Get("retry-after"), body, s.want)
				if s.want.status == 200 {
					served++
				}
				<-g.done // settled before the next reservation
			}
			if got := len(g.OpenAI.Requests()); got != served {
				t.Errorf("upstream saw %d requests, want %d", got, served)
			}
		})
	}
}

// TestSessionRPMOpenMode: without keys, the session id alone names the
// session; a loop past the session's RPM is refused in its name while
// another session is served.
func TestSessionRPMOpenMode(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			g := startGateway(t, limitsBase+withSession(st.yaml(t), "{header: x-session-id, rpm_limit: 2}"), st.replicas)
			ok := refusal{status: 200}
			limited := refusal{429, "rate_limit_exceeded", true, "rate limit exceeded: session agent-7 reached its rpm of 2"}
			for i, s := range []struct {
				session string
				want    refusal
			}{{"agent-7", ok}, {"agent-7", ok}, {"agent-7", limited}, {"agent-8", ok}, {"", ok}, {"agent-7", limited}} {
				resp, body := chat(t, g.URL, "", "gpt-4o-mini", map[string]string{"x-session-id": s.session})
				checkResponse(t, fmt.Sprint("step ", i), resp.StatusCode, resp.Header.Get("retry-after"), body, s.want)
				<-g.done
			}
		})
	}
}
