package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/weir-ai/weir/test/harness"
)

// internalClient makes the harness behave as Envoy does for a request it
// treats as internal (a private load balancer in front): the client's
// x-request-id is passed on as is, and a missing one stays empty.
func internalClient(o *harness.Options) { o.RequestID = func(client string) string { return client } }

// TestClientRequestIDIsNotIdentity: a client that controls x-request-id
// cannot get past a limit by repeating it, omitting it, or reusing
// another request's. Five requests on an RPM limit of 1 serve exactly one,
// on both stores; the client's id still comes back as x-request-id.
func TestClientRequestIDIsNotIdentity(t *testing.T) {
	const victimID = "b7c1e0f2-victim-request"
	cases := []struct {
		name string
		id   func(i int) string // the attacker's x-request-id for request i
		// victim: another key's request with victimID is served first
		victim bool
	}{
		{"same id", func(int) string { return "same-id" }, false},
		{"empty id", func(int) string { return "" }, false},
		{"forged id of another request", func(int) string { return victimID }, true},
	}
	for _, st := range sharedStores {
		for _, tt := range cases {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				key, hash := newKey(t)
				victim, victimHash := newKey(t)
				g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, rpm_limit: 1}
    - {hash: %s}
`, hash, victimHash), st.replicas, internalClient)
				upstream := 0
				if tt.victim {
					resp, body := chat(t, g.URL, victim.Reveal(), "gpt-4o-mini", map[string]string{"x-request-id": victimID})
					if resp.StatusCode != 200 {
						t.Fatalf("victim: status %d: %s", resp.StatusCode, body)
					}
					upstream++
				}
				served, limited := 0, 0
				for i := range 5 {
					hdr := map[string]string{}
					if id := tt.id(i); id != "" {
						hdr["x-request-id"] = id
					}
					resp, body := chat(t, g.URL, key.Reveal(), "gpt-4o-mini", hdr)
					switch resp.StatusCode {
					case 200:
						served++
					case 429:
						limited++
					default:
						t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
					}
					// The client's id comes back; without one, Weir's own
					// (32 hex digits), never the provider's.
					got, want := resp.Header.Get("x-request-id"), tt.id(i)
					if want == "" && len(got) == 32 && !strings.Contains(got, "fake") {
						want = got
					}
					if got != want {
						t.Errorf("request %d: x-request-id %q, want %q", i, got, tt.id(i))
					}
				}
				if served != 1 || limited != 4 {
					t.Fatalf("served %d, limited %d of 5 on an RPM limit of 1", served, limited)
				}
				if got := len(g.OpenAI.Requests()); got != upstream+1 {
					t.Errorf("upstream saw %d requests, want %d", got, upstream+1)
				}
			})
		}
	}
}
