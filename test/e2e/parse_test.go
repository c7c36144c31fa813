package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Issue 9: bodies Weir and the provider would read differently (duplicate
// keys) are refused, and reply limits cannot wrap an estimate negative or
// be ignored by the Responses API.

// TestDuplicateKeysRefused: a duplicate top-level key (or one inside
// stream_options) is a 400 naming the key on every ingress, and the
// provider receives nothing. Keys are required, so count_tokens checks the
// body before authorising its model.
func TestDuplicateKeysRefused(t *testing.T) {
	key, hash := newKey(t)
	g := startGateway(t, limitsBase+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, models: [gpt-4o-mini]}
`, hash), 1)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, path, body, dup string
	}{
		{"chat model", "/v1/chat/completions", `{"model":"gpt-4o-mini",` + msgs + `,"model":"gpt-4o"}`, "model"},
		{"chat stream_options", "/v1/chat/completions", `{"model":"gpt-4o-mini",` + msgs + `,"stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":false}}`, "stream_options"},
		{"chat include_usage", "/v1/chat/completions", `{"model":"gpt-4o-mini",` + msgs + `,"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, "include_usage"},
		{"embeddings", "/v1/embeddings", `{"model":"gpt-4o-mini","input":"a","input":"b"}`, "input"},
		{"completions", "/v1/completions", `{"model":"gpt-4o-mini","prompt":"a","max_tokens":5,"max_tokens":50000}`, "max_tokens"},
		{"responses", "/v1/responses", `{"model":"gpt-4o-mini","input":"a","model":"gpt-4o"}`, "model"},
		{"messages", "/v1/messages", `{"model":"gpt-4o","max_tokens":5,` + msgs + `,"model":"gpt-4o-mini"}`, "model"},
		// The key allows gpt-4o-mini: count_tokens authorised the first
		// model, messages the last.
		{"count_tokens", "/v1/messages/count_tokens", `{"model":"gpt-4o-mini",` + msgs + `,"model":"gpt-4o"}`, "model"},
	}
	hdr := map[string]string{"authorization": "Bearer " + key.Reveal()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.OpenAI.Reset()
			resp, b := post(t, g.URL+tt.path, tt.body, hdr)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %s", resp.StatusCode, b)
			}
			if msg := gjson.GetBytes(b, "error.message").Str; !strings.Contains(msg, `duplicate key "`+tt.dup+`"`) {
				t.Errorf("message %q does not name %q: %s", msg, tt.dup, b)
			}
			if n := len(g.OpenAI.Requests()); n != 0 {
				t.Errorf("the provider received %d requests", n)
			}
		})
	}
	// The same bodies without the duplicate are served (count_tokens
	// answers itself): the 400s above are the duplicates' doing.
	resp, b := post(t, g.URL+"/v1/messages/count_tokens", `{"model":"gpt-4o-mini",`+msgs+`}`, hdr)
	if resp.StatusCode != 200 {
		t.Errorf("count_tokens without a duplicate: %d %s", resp.StatusCode, b)
	}
	resp, b = post(t, g.URL+"/v1/messages", `{"model":"gpt-4o-mini","max_tokens":5,`+msgs+`}`, hdr)
	if resp.StatusCode != 200 {
		t.Errorf("messages without a duplicate: %d %s", resp.StatusCode, b)
	}
}

// TestOverflowingMaxTokens: a reply limit of 2^56 or MaxInt64 is a 400 (it
// cannot be used, and used to wrap the estimate negative), and while such
// requests come in, small requests are still held to a tiny budget and a
// TPM limit, on both stores.
func TestOverflowingMaxTokens(t *testing.T) {
	const small = `{"model":"gpt-4o-mini","max_tokens":%d,"messages":[{"role":"user","content":"x"}]}`
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			budgetKey, budgetHash := newKey(t)
			tpmKey, tpmHash := newKey(t)
			// gpt-4o-mini's embedded price: $0.60 per 1M output tokens, so
			// 1000 tokens cost $0.0006, above the $0.0001 budget.
			g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, max_budget: 0.0001}
    - {hash: %s, tpm_limit: 2000}
`, budgetHash, tpmHash), st.replicas)
			for _, tc := range []struct {
				key    string
				field  string
				huge   string
				others int
			}{
				{budgetKey.Reveal(), "max_tokens", "72057594037927936", 1000},
				{tpmKey.Reveal(), "max_completion_tokens", "9223372036854775807", 1500},
			} {
				// Without exact-usage: a fake told to write 2^56 tokens
				// would never finish, were the request let through.
				resp, b := post(t, g.URL+"/v1/chat/completions", `{"model":"gpt-4o-mini","`+tc.field+`":`+tc.huge+`,"messages":[{"role":"user","content":"x"}]}`,
					map[string]string{"authorization": "Bearer " + tc.key})
				if resp.StatusCode != 400 || !strings.Contains(string(b), tc.field) {
					t.Fatalf("%s %s: status %d, want 400 naming the field: %s", tc.field, tc.huge, resp.StatusCode, b)
				}
				hdr := map[string]string{"authorization": "Bearer " + tc.key, "x-fake-behavior": "exact-usage"}
				ok, limited, other := burst(g.URL, 20, func(int) (string, map[string]string) {
					return fmt.Sprintf(small, tc.others), hdr
				})
				// The budget key affords none; the TPM key one 1500-token
				// request (a second would pass 2000).
				want := int64(0)
				if tc.field == "max_completion_tokens" {
					want = 1
				}
				if ok != want || limited != 20-want || other != 0 {
					t.Errorf("%s: served %d, limited %d, other %d; want %d served", tc.field, ok, limited, other, want)
				}
			}
			if n := len(g.OpenAI.Requests()); n != 1 {
				t.Errorf("the provider received %d requests, want 1", n)
			}
		})
	}
}

// TestResponsesReservesMaxOutputTokens: /v1/responses reserves its own
// max_output_tokens, so 20000 output tokens ($0.012 on gpt-4o-mini) are
// refused up front on a $0.01 budget, on both stores. It reserved the
// default 1024 before, and served 16 of 20.
func TestResponsesReservesMaxOutputTokens(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			key, hash := newKey(t)
			g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, max_budget: 0.01}
`, hash), st.replicas)
			ok, limited, other := burstTo(g.URL+"/v1/responses", 20, func(int) (string, map[string]string) {
				return `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":20000}`,
					map[string]string{"authorization": "Bearer " + key.Reveal(), "x-fake-behavior": "exact-usage"}
			})
			if ok != 0 || limited != 20 || other != 0 {
				t.Errorf("served %d, limited %d, other %d; want all 20 refused", ok, limited, other)
			}
			if n := len(g.OpenAI.Requests()); n != 0 {
				t.Errorf("the provider received %d requests", n)
			}
		})
	}
}
