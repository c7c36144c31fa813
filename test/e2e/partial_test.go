package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/tokens"
)

// partialBase routes one model to each provider's fake. Every token costs
// one micro-dollar, so a record's cost is its token count.
const partialBase = `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "FAKE_URL/v1", credential: {value: sk-fake}, forward_headers: [x-fake-behavior]}
  - {name: az, provider: azure, base_url: "FAKE_AZURE_URL", credential: {value: k}, options: {api_version: "2024-10-21"}, forward_headers: [x-fake-behavior]}
  - {name: an, provider: anthropic, base_url: "FAKE_ANTHROPIC_URL", credential: {value: k}, forward_headers: [x-fake-behavior]}
  - {name: gm, provider: gemini, base_url: "FAKE_GEMINI_URL", credential: {value: k}, forward_headers: [x-fake-behavior]}
  - name: br
    provider: bedrock
    base_url: "FAKE_BEDROCK_URL"
    aws: {region: us-east-1, access_key_id: AKIAFAKEFAKEFAKE, secret_access_key: fake}
    forward_headers: [x-fake-behavior]
models:
  - {name: gpt-4o-mini, backends: [oa]}
  - {name: azure-gpt-4o-mini, backends: [az], provider_model: gpt-4o-mini}
  - {name: claude-sonnet-4-5, backends: [an]}
  - {name: gemini-2.5-flash, backends: [gm]}
  - {name: bedrock-claude-sonnet-4-5, backends: [br], provider_model: "anthropic.claude-sonnet-4-5-20250929-v1:0"}
pricing:
  - {backend: oa, input: 1, output: 1}
  - {backend: az, input: 1, output: 1}
  - {backend: an, input: 1, output: 1}
  - {backend: gm, input: 1, output: 1}
  - {backend: br, input: 1, output: 1}
`

const partialTPM = 10000000

// TestPartialStreamSettles: a stream that ends before the provider's final
// usage (the client hangs up, or the upstream cuts it) is billed at least
// the tokens of the text the client received, plus its prompt, on the
// key's TPM counter and spend, and its spend record says partial. A
// complete stream is billed exactly the provider's usage.
func TestPartialStreamSettles(t *testing.T) {
	const maxTokens = 400
	models := []string{"gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "bedrock-claude-sonnet-4-5"}
	cases := []struct {
		name     string
		behavior string
		// hangUp: the client closes the stream after reading this many
		// words; 0 reads to the end.
		hangUp  int
		partial bool
	}{
		{"client disconnect", "exact-usage,hold-after=8", 2, true},
		{"upstream cut", "exact-usage,cut-after=8", 0, true},
		{"complete", "exact-usage", 0, false},
	}
	o200k := tokens.Must(tokens.O200kBase)
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			// A fresh key and a fresh control key per request: the key's TPM
			// window holds that one stream and nothing else.
			type pair struct{ key, control string }
			pairs := map[string]pair{}
			var keys strings.Builder
			for _, model := range models {
				for _, c := range cases {
					k, h := newKey(t)
					ck, ch := newKey(t)
					pairs[model+"/"+c.name] = pair{k.Reveal(), ck.Reveal()}
					fmt.Fprintf(&keys, "    - {hash: %s, tpm_limit: %d, max_budget: 1000}\n    - {hash: %s, tpm_limit: %d, max_budget: 1000}\n", h, partialTPM, ch, partialTPM)
				}
			}
			spendFile := t.TempDir() + "/spend.jsonl"
			g := startGateway(t, partialBase+st.yaml(t)+fmt.Sprintf(`
spend: {file: %q}
auth:
  keys:
`, spendFile)+keys.String(), st.replicas)
			type want struct {
				id       string
				received int64 // tokens of the text the client read
				words    int64 // the fakes count a word as a token
				partial  bool
			}
			var wants []want
			for _, model := range models {
				for _, c := range cases {
					t.Run(model+"/"+c.name, func(t *testing.T) {
						p := pairs[model+"/"+c.name]
						id, text := streamChat(t, g.URL, p.key, model, maxTokens, c.behavior, c.hangUp)
						<-g.done // the stream ended and settled
						received := int64(o200k.Count(text))
						words := len(strings.Fields(text))
						if c.hangUp > 0 && words < c.hangUp {
							t.Fatalf("client read %d words before hanging up, want %d", words, c.hangUp)
						}
						if c.partial && words >= maxTokens {
							t.Fatalf("the %s stream delivered all %d words", c.name, words)
						}
						used := tpmUsed(t, g, p.key, p.control)
						if c.partial && used <= received {
							t.Errorf("TPM counter holds %d, want more than the %d tokens received (plus the prompt)", used, received)
						}
						if !c.partial && used <= int64(words) {
							t.Errorf("TPM counter holds %d, want the provider's usage (%d completion tokens and the prompt)", used, words)
						}
						wants = append(wants, want{id, received, int64(words), c.partial})
					})
				}
			}
			for _, s := range g.replicas {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			recs := readSpend(t, spendFile)
			for _, w := range wants {
				r, ok := recs[w.id]
				if !ok {
					t.Errorf("no spend record for %s", w.id)
					continue
				}
				prompt, completion, cost := r.Get("prompt_tokens").Int(), r.Get("completion_tokens").Int(), r.Get("cost_micro_usd").Int()
				if got := r.Get("partial").Bool(); got != w.partial {
					t.Errorf("%s %s: partial = %v, want %v: %s", w.id, r.Get("model").Str, got, w.partial, r.Raw)
				}
				if cost != prompt+completion || prompt <= 0 {
					t.Errorf("%s: cost %d for %d+%d tokens: %s", w.id, cost, prompt, completion, r.Raw)
				}
				if w.partial && completion < w.received {
					t.Errorf("%s %s: billed %d completion tokens, the client received %d: %s", w.id, r.Get("model").Str, completion, w.received, r.Raw)
				}
				if !w.partial && completion != w.words {
					t.Errorf("%s %s: a complete stream billed %d completion tokens, the provider reported %d: %s", w.id, r.Get("model").Str, completion, w.words, r.Raw)
				}
			}
			// Every stream that did not end cleanly is counted, on
			// whichever replica served it, and no complete one is.
			var incomplete, partials float64
			for _, w := range wants {
				if w.partial {
					partials++
				}
			}
			for _, s := range g.replicas {
				fams, err := s.Metrics().Registry.Gather()
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fams {
					if f.GetName() == "weir_streams_incomplete_total" {
						for _, m := range f.GetMetric() {
							incomplete += m.GetCounter().GetValue()
						}
					}
				}
			}
			if incomplete != partials {
				t.Errorf("weir_streams_incomplete_total = %v, want the %v streams that did not end cleanly", incomplete, partials)
			}
		})
	}
}

// streamChat sends one streamed chat request and reads it, hanging up
// after hangUp words when hangUp > 0. It returns Weir's request id and the
// text the client read.
func streamChat(t *testing.T, url, key, model string, maxTokens int, behavior string, hangUp int) (string, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"stream":true,"max_tokens":%d,"messages":[{"role":"user","content":"tell me a long story"}]}`, model, maxTokens)
	req, err := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+key)
	req.Header.Set("x-fake-behavior", behavior)
	// A transport of its own: closing the body mid-stream drops the
	// connection, which is the client hanging up.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	id := resp.Header.Get("x-weir-request-id")
	if id == "" {
		id = resp.Header.Get("x-request-id")
	}
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || !strings.HasPrefix(data, "{") {
			continue
		}
		text.WriteString(gjson.Get(data, "choices.0.delta.content").Str)
		if hangUp > 0 && len(strings.Fields(text.String())) >= hangUp {
			break
		}
	}
	return id, text.String()
}

// tpmUsed reads the tokens counted on key's TPM window: a probe request on
// key and one on a control key that has served nothing reserve the same
// estimate, so the difference of their remaining tokens is what key had
// used before.
func tpmUsed(t *testing.T, g *gateway, key, control string) int64 {
	t.Helper()
	remaining := func(k string) int64 {
		resp, body := chat(t, g.URL, k, "gpt-4o-mini", nil)
		<-g.done
		if resp.StatusCode != 200 {
			t.Fatalf("probe: status %d: %s", resp.StatusCode, body)
		}
		n, err := strconv.ParseInt(resp.Header.Get("x-ratelimit-remaining-tokens"), 10, 64)
		if err != nil {
			t.Fatalf("probe: remaining tokens %q", resp.Header.Get("x-ratelimit-remaining-tokens"))
		}
		return n
	}
	c := remaining(control)
	k := remaining(key)
	return c - k
}

// readSpend reads a spend file's records by request id.
// readSpend indexes the spend file by the client's x-request-id: the
// record's own request_id is Weir's reservation id.
func readSpend(t *testing.T, path string) map[string]gjson.Result {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]gjson.Result{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		r := gjson.Parse(line)
		out[r.Get("client_request_id").Str] = r
	}
	return out
}
