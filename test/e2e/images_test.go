package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// bigPNG is a base64 payload of about n bytes whose header is a w×h PNG:
// only the header is read, so the padding stands for a large image.
func bigPNG(t *testing.T, w, h, n int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	s := base64.StdEncoding.EncodeToString(b.Bytes()[:33]) // signature and IHDR
	s = s[:len(s)/4*4]
	return s + strings.Repeat("A", n-len(s))
}

// TestImageHeavyUnderTPM: three 300 KB base64 images under a 200k TPM
// limit are admitted (each is estimated at its documented token cost,
// not its bytes) and the key is charged the provider's actual usage.
func TestImageHeavyUnderTPM(t *testing.T) {
	img := `{"type":"image_url","image_url":{"url":"data:image/png;base64,` + bigPNG(t, 1024, 1024, 300_000) + `"}}`
	body := `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":[{"type":"text","text":"compare these"},` +
		strings.Join([]string{img, img, img}, ",") + `]}]}`
	// The Anthropic ingress's body is OpenAI-shaped when it is estimated.
	block := `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + bigPNG(t, 1024, 1024, 300_000) + `"}}`
	messages := `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":[{"type":"text","text":"compare these"},` +
		strings.Join([]string{block, block, block}, ",") + `]}]}`
	admittedUnderTPM(t, body, messages)
}

// admittedUnderTPM posts a chat body and a Messages body, on each store,
// with a key limited to 200k TPM: each must be admitted (estimated under
// the limit) and the key charged exactly the provider's reported usage.
func admittedUnderTPM(t *testing.T, chat, messages string) {
	t.Helper()
	for _, st := range sharedStores {
		for _, in := range []struct{ path, body, prompt, completion string }{
			{"/v1/chat/completions", chat, "usage.prompt_tokens", "usage.completion_tokens"},
			{"/v1/messages", messages, "usage.input_tokens", "usage.output_tokens"},
		} {
			t.Run(st.name+in.path, func(t *testing.T) {
				key, hash := newKey(t)
				control, chash := newKey(t)
				g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, tpm_limit: 200000}
    - {hash: %s, tpm_limit: 200000}
`, hash, chash), st.replicas)
				resp, out := post(t, g.URL+in.path, in.body, map[string]string{"authorization": "Bearer " + key.Reveal()})
				<-g.done
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %.300s", resp.StatusCode, out)
				}
				actual := gjson.GetBytes(out, in.prompt).Int() + gjson.GetBytes(out, in.completion).Int()
				if actual <= 0 {
					t.Fatalf("no usage in %.300s", out)
				}
				if used := tpmUsed(t, g, key.Reveal(), control.Reveal()); used != actual {
					t.Errorf("TPM used %d, want the actual usage %d", used, actual)
				}
			})
		}
	}
}

// TestMaxReserveTokens: with limits.max_reserve_tokens a request whose
// max_tokens the budget could never hold is admitted (only the cap is
// reserved) and charged its actual usage; without it the same request is
// refused as exceeding the limit.
func TestMaxReserveTokens(t *testing.T) {
	const body = `{"model":"gpt-4o-mini","max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}`
	for _, st := range sharedStores {
		for _, capped := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, capped %t", st.name, capped), func(t *testing.T) {
				key, hash := newKey(t)
				control, chash := newKey(t)
				lim := st.yaml(t)
				if capped {
					if lim == "" {
						lim = "limits: {max_reserve_tokens: 500}\n"
					} else {
						lim = strings.Replace(lim, "limits: {", "limits: {max_reserve_tokens: 500, ", 1)
					}
				}
				// $1 per million output tokens: a $0.001 budget holds 1000
				// completion tokens, not 100000.
				g := startGateway(t, limitsBase+lim+fmt.Sprintf(`
pricing:
  - {backend: oa, model: gpt-4o-mini, input: 0, output: 1}
auth:
  keys:
    - {hash: %s, max_budget: 0.001, tpm_limit: 1000000}
    - {hash: %s, max_budget: 0.001, tpm_limit: 1000000}
`, hash, chash), st.replicas)
				resp, out := post(t, g.URL+"/v1/chat/completions", body, map[string]string{"authorization": "Bearer " + key.Reveal()})
				<-g.done
				if !capped {
					if resp.StatusCode != 400 || !strings.Contains(string(out), "request_exceeds_limit") {
						t.Fatalf("uncapped: status %d: %s", resp.StatusCode, out)
					}
					return
				}
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, out)
				}
				actual := gjson.GetBytes(out, "usage.prompt_tokens").Int() + gjson.GetBytes(out, "usage.completion_tokens").Int()
				if used := tpmUsed(t, g, key.Reveal(), control.Reveal()); used != actual {
					t.Errorf("TPM used %d, want the actual usage %d", used, actual)
				}
			})
		}
	}
}
