package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits/limitstest"
	"github.com/weir-ai/weir/extproc/vkey"
)

// sessionPolicy: sessions of $0.25 and 3 RPM; every request reserves
// 100 completion tokens at $1000 per million, $0.10, so a session takes
// two requests and refuses the third on its budget.
func sessionPolicy(t *testing.T) *admission.Policy {
	t.Helper()
	p, err := admission.Compile(&config.Auth{}, &config.Limits{Session: &config.Session{
		Header: "x-session-id", TTL: "1h", LimitsConfig: config.LimitsConfig{MaxBudget: 0.25, RPM: 3},
	}}, []config.PriceOverride{{Model: "*", Input: 0, Output: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) *vkey.Key {
	t.Helper()
	sec, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &vkey.Key{Hash: sec.Hash(), Prefix: sec.Prefix()}
}

// TestSessionBudget: a session's budget is its own, under its key. In
// order, on one store: which key, which session header, and the outcome
// (status 0 for admitted, else the refusal's status and message).
func TestSessionBudget(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			clock := limitstest.NewClock(limitstest.T0)
			g := newGate(st.open(t, clock), clock)
			p := sessionPolicy(t)
			a, b := newKey(t), newKey(t)
			keys := map[string]*vkey.Key{"a": a, "b": b, "open": nil}
			steps := []struct {
				key, session string
				status       int
				msg          string // for a refusal
			}{
				{"a", "s1", 0, ""},
				{"a", "s2", 0, ""},
				{"a", "s1", 0, ""},
				{"a", "s1", 429, "budget exceeded: session s1 of key " + a.Prefix + " reached its budget of $0.25"},
				// The other session of the key is still served.
				{"a", "s2", 0, ""},
				// The same session id under another key is another session.
				{"b", "s1", 0, ""},
				{"b", "s1", 0, ""},
				{"b", "s1", 429, "budget exceeded: session s1 of key " + b.Prefix + " reached its budget of $0.25"},
				// A request without the header is no session's.
				{"a", "", 0, ""},
				{"a", "", 0, ""},
				{"a", "", 0, ""},
				// Without a key, the session id alone names it.
				{"open", "s1", 0, ""},
				{"open", "s1", 0, ""},
				{"open", "s1", 429, "budget exceeded: session s1 reached its budget of $0.25"},
				// Refused before any counter: not visible ASCII, too long.
				{"a", "s 3", 400, "invalid request: header x-session-id must be visible ASCII characters (no spaces or control characters)"},
				{"a", "s\x013", 400, "invalid request: header x-session-id must be visible ASCII characters (no spaces or control characters)"},
				{"a", "sé", 400, "invalid request: header x-session-id must be visible ASCII characters (no spaces or control characters)"},
				{"a", strings.Repeat("x", 129), 400, "invalid request: header x-session-id must be 1 to 128 characters, got 129"},
				{"a", strings.Repeat("y", 128), 0, ""},
			}
			for i, s := range steps {
				tk := &admission.Ticket{Key: keys[s.key]}
				r := &admission.Request{ID: "r" + string(rune('a'+i)), Body: body, Model: "m", Provider: "openai", Upstream: "m", Completion: 100, Session: s.session}
				g.Price(p, tk, "b", r)
				err := g.Reserve(context.Background(), p, tk, r)
				status, msg := 0, ""
				if err != nil {
					status, msg = errs.Status(err), err.Error()
				}
				if status != s.status || msg != s.msg {
					t.Fatalf("step %d (key %s, session %q): %d %q, want %d %q", i, s.key, s.session, status, msg, s.status, s.msg)
				}
				if s.status == 429 {
					if ra, ok := errs.RetryAfter(err); !ok || ra <= 0 {
						t.Fatalf("step %d: no Retry-After on a session refusal (%v)", i, err)
					}
				}
			}
		})
	}
}

// TestSessionRPM: the session's rate limit names the session too.
func TestSessionRPM(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			clock := limitstest.NewClock(limitstest.T0)
			g := newGate(st.open(t, clock), clock)
			p := sessionPolicy(t)
			k := newKey(t)
			var err error
			for i := range 4 {
				tk := &admission.Ticket{Key: k}
				r := &admission.Request{ID: "rpm" + string(rune('a'+i)), Body: body, Model: "m", Provider: "openai", Upstream: "m", Completion: 1, Session: "loop"}
				g.Price(p, tk, "b", r)
				if err = g.Reserve(context.Background(), p, tk, r); err != nil && i < 3 {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if want := "rate limit exceeded: session loop of key " + k.Prefix + " reached its rpm of 3"; err == nil || err.Error() != want || errs.Status(err) != 429 {
				t.Fatalf("4th request: %v, want %q", err, want)
			}
		})
	}
}
