package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// refusal is what a test expects of one response.
type refusal struct {
	status int
	code   string // error.code; "" for a 200
	retry  bool   // Retry-After present
	msg    string // a substring of error.message
}

func checkResponse(t *testing.T, label string, status int, retryAfter string, body []byte, want refusal) {
	t.Helper()
	if status != want.status {
		t.Fatalf("%s: status %d, want %d: %s", label, status, want.status, body)
	}
	if want.status == 200 {
		return
	}
	if got := gjson.GetBytes(body, "error.code").Str; got != want.code {
		t.Errorf("%s: code %q, want %q: %s", label, got, want.code, body)
	}
	if (retryAfter != "") != want.retry {
		t.Errorf("%s: Retry-After %q, want present=%v", label, retryAfter, want.retry)
	}
	if msg := gjson.GetBytes(body, "error.message").Str; !strings.Contains(msg, want.msg) {
		t.Errorf("%s: message %q does not contain %q", label, msg, want.msg)
	}
}

// TestUnpricedModelOnBudgetedKey: a model the pricing table does not know
// (here through the openai/* wildcard) would cost nothing against a
// budget, so a budgeted key is refused it; a key with no budget is served;
// and with a fallback price the model is charged at it.
func TestUnpricedModelOnBudgetedKey(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			budgeted, budgetedH := newKey(t)
			rpmOnly, rpmOnlyH := newKey(t)
			g := startGateway(t, limitsBase+`  - {name: "openai/*", backends: [oa]}
`+st.yaml(t)+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, max_budget: 1}
    - {hash: %s, rpm_limit: 100}
`, budgetedH, rpmOnlyH), st.replicas)
			for _, tc := range []struct {
				key, model string
				want       refusal
			}{
				{budgeted.Reveal(), "openai/o1-pro", refusal{403, "model_not_priced", false, `the key budget applies, but model "o1-pro" at provider openai has no price`}},
				{budgeted.Reveal(), "openai/gpt-4o-mini", refusal{status: 200}},
				{budgeted.Reveal(), "gpt-4o-mini", refusal{status: 200}},
				{rpmOnly.Reveal(), "openai/o1-pro", refusal{status: 200}},
			} {
				resp, body := chat(t, g.URL, tc.key, tc.model, nil)
				checkResponse(t, tc.model, resp.StatusCode, resp.Header.Get("retry-after"), body, tc.want)
			}
			if got := len(g.OpenAI.Requests()); got != 3 {
				t.Errorf("upstream saw %d requests, want 3", got)
			}
		})
	}
}

// TestUnpricedModelAtFallbackPrice: with `pricing: [{model: "*"}]`, an
// unknown model is charged the fallback price: $1 per million output
// tokens is 16 µ$ per request of 16 tokens, so a 40 µ$ budget admits 2.
func TestUnpricedModelAtFallbackPrice(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			key, hash := newKey(t)
			g := startGateway(t, limitsBase+`  - {name: "openai/*", backends: [oa]}
`+st.yaml(t)+fmt.Sprintf(`
pricing:
  - {model: "*", input: 0, output: 1}
auth:
  keys:
    - {hash: %s, max_budget: 0.00004}
`, hash), st.replicas)
			for i, want := range []refusal{{status: 200}, {status: 200},
				{402, "budget_exceeded", false, "key budget of $0.00004 reached; it does not reset"},
				{402, "budget_exceeded", false, "key budget of $0.00004 reached; it does not reset"},
			} {
				resp, body := chat(t, g.URL, key.Reveal(), "openai/o1-pro", map[string]string{"x-fake-behavior": "exact-usage"})
				checkResponse(t, fmt.Sprint("request ", i), resp.StatusCode, resp.Header.Get("retry-after"), body, want)
				if want.status == 200 {
					<-g.done // settled before the next reservation
				}
			}
		})
	}
}

// TestRefusalsThatCannotClear: a lifetime budget reached, or an estimate
// alone above a limit, is refused without Retry-After and with a status
// SDKs do not retry; a budget that resets keeps its 429 and Retry-After.
// Small budgets show their digits.
func TestRefusalsThatCannotClear(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			lifetime, lifetimeH := newKey(t)
			daily, dailyH := newKey(t)
			tiny, tinyH := newKey(t)
			tpm, tpmH := newKey(t)
			g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
pricing:
  - {backend: oa, input: 0, output: 1}
auth:
  keys:
    - {hash: %s, max_budget: 0.00004}
    - {hash: %s, max_budget: 0.00004, budget_duration: 1d}
    - {hash: %s, max_budget: 0.00001, budget_duration: 1d}
    - {hash: %s, tpm_limit: 10}
`, lifetimeH, dailyH, tinyH, tpmH), st.replicas)
			exhausted := refusal{402, "budget_exceeded", false, "key budget of $0.00004 reached; it does not reset"}
			tests := []struct {
				name string
				key  string
				want []refusal
			}{
				{"lifetime budget", lifetime.Reveal(), []refusal{{status: 200}, {status: 200}, exhausted, exhausted}},
				{"daily budget", daily.Reveal(), []refusal{{status: 200}, {status: 200}, {429, "budget_exceeded", true, "key budget of $0.00004 reached"}}},
				{"estimate above the budget", tiny.Reveal(), []refusal{{400, "request_exceeds_limit", false, "this request's estimate of $0.000016 exceeds the key budget of $0.00001"}}},
				{"estimate above the tpm", tpm.Reveal(), []refusal{{400, "request_exceeds_limit", false, "exceeds the key tpm of 10"}}},
			}
			for _, tc := range tests {
				for i, want := range tc.want {
					resp, body := chat(t, g.URL, tc.key, "gpt-4o-mini", map[string]string{"x-fake-behavior": "exact-usage"})
					checkResponse(t, fmt.Sprint(tc.name, " ", i), resp.StatusCode, resp.Header.Get("retry-after"), body, want)
				}
			}
		})
	}
}
