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

// perModelBase routes gpt-4o-mini by its name, a config alias and a
// wildcard: every spelling is the same model to a per-model limit.
const perModelBase = `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "FAKE_URL/v1", forward_headers: [x-fake-behavior]}
models:
  - {name: gpt-4o-mini, aliases: [fake-openai], backends: [oa]}
  - {name: gpt-4o, backends: [oa]}
  - {name: "openai/*", backends: [oa]}
`

// TestPerModelLimitFollowsResolvedModel: a per-model RPM of 2 on
// gpt-4o-mini admits exactly 2 of 15 requests spread over the three
// spellings (5 each, interleaved), within the window; a per-model budget
// counts all spellings too. Another model is not limited.
func TestPerModelLimitFollowsResolvedModel(t *testing.T) {
	spellings := []string{"fake-openai", "openai/gpt-4o-mini", "gpt-4o-mini"}
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			rpmKey, rpmH := newKey(t)
			budgetKey, budgetH := newKey(t)
			g := startGateway(t, perModelBase+st.yaml(t)+fmt.Sprintf(`
pricing:
  - {backend: oa, input: 0, output: 1}
auth:
  keys:
    - {hash: %s, model_limits: {gpt-4o-mini: {rpm_limit: 2}}}
    - {hash: %s, model_limits: {gpt-4o-mini: {max_budget: 0.000032}}}
`, rpmH, budgetH), st.replicas)
			var statuses []int
			for i := range 15 {
				m := spellings[i%3]
				resp, body := chat(t, g.URL, rpmKey.Reveal(), m, nil)
				statuses = append(statuses, resp.StatusCode)
				if resp.StatusCode == 429 {
					checkResponse(t, m, resp.StatusCode, resp.Header.Get("retry-after"), body,
						refusal{429, "rate_limit_exceeded", true, "key rpm for model gpt-4o-mini of 2 reached"})
				}
			}
			want := fmt.Sprint([]int{200, 200, 429, 429, 429, 429, 429, 429, 429, 429, 429, 429, 429, 429, 429})
			if got := fmt.Sprint(statuses); got != want {
				t.Errorf("statuses %s, want %s", got, want)
			}
			if resp, body := chat(t, g.URL, rpmKey.Reveal(), "gpt-4o", nil); resp.StatusCode != 200 {
				t.Errorf("another model: %d %s", resp.StatusCode, body)
			}
			// 16 µ$ a request, 32 µ$ for gpt-4o-mini however it is spelled.
			for i, want := range []refusal{{status: 200}, {status: 200},
				{402, "budget_exceeded", false, "key budget for model gpt-4o-mini of $0.000032 reached; it does not reset"},
			} {
				m := spellings[i]
				resp, body := chat(t, g.URL, budgetKey.Reveal(), m, map[string]string{"x-fake-behavior": "exact-usage"})
				checkResponse(t, m, resp.StatusCode, resp.Header.Get("retry-after"), body, want)
			}
			if got := len(g.OpenAI.Requests()); got != 5 {
				t.Errorf("upstream saw %d requests, want 5", got)
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
