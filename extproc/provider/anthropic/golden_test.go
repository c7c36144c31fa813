package anthropic

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

// fixedNow is the clock every test uses, so "created" is stable.
var fixedNow = time.Unix(1700000000, 0)

func init() { now = func() time.Time { return fixedNow } }

func newTestTranslator(t testing.TB) *translator {
	t.Helper()
	tr, err := New(&config.Backend{Name: "claude", Provider: "anthropic", Credential: &config.Credential{Key: "sk-ant-test"}})
	if err != nil {
		t.Fatal(err)
	}
	return tr.(*translator)
}

// canonical re-encodes JSON with sorted keys and indentation so goldens are
// compared by meaning, not bytes. Test-only: production code never
// unmarshals bodies.
func canonical(t testing.TB, b []byte) []byte { return golden.Canonical(t, b) }

// checkGolden compares got with the golden file semantically (JSON) or
// byte for byte (SSE, normalised by the caller), or rewrites it.
func checkGolden(t *testing.T, path string, got []byte) { golden.Check(t, path, got) }

func inputs(t *testing.T, dir, suffix string) []string { return golden.Inputs(t, dir, suffix) }

func jsonField(t testing.TB, v any) json.RawMessage { return golden.JSONField(t, v) }

// TestRequestGolden: testdata/request/X.in.json is an OpenAI chat request;
// X.out.json holds the upstream path, headers and Anthropic body, or the
// status and OpenAI error body the client would get.
func TestRequestGolden(t *testing.T) {
	tr := newTestTranslator(t)
	for _, in := range inputs(t, "request", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(body)
			var req struct {
				Model  string `json:"model"`
				Stream bool   `json:"stream"`
			}
			_ = json.Unmarshal(body, &req)
			up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: body, Model: req.Model, Stream: req.Stream})
			if !bytes.Equal(body, orig) {
				t.Fatal("TranslateRequest modified the client's body")
			}
			doc := map[string]json.RawMessage{}
			if err != nil {
				if strings.HasPrefix(name, "err_") == false {
					t.Errorf("unexpected error: %v", err)
				}
				if _, ok := errs.KindOf(err); !ok {
					t.Errorf("error wraps no errs sentinel: %v", err)
				}
				doc["status"] = jsonField(t, errs.Status(err))
				doc["error"] = errs.Body(err)
			} else {
				if strings.HasPrefix(name, "err_") {
					t.Errorf("expected an error")
				}
				headers := map[string]string{}
				for _, h := range up.Headers {
					headers[h.Key] = h.Value
				}
				doc["path"] = jsonField(t, up.Path)
				doc["headers"] = jsonField(t, headers)
				doc["body"] = up.Body
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, jsonField(t, doc)))
		})
	}
}

// TestResponseGolden: testdata/response/X.in.json holds status, the model
// the client asked for and the upstream body (body, or body_text when it is
// not JSON); X.out.json holds the translated body, usage and error.
func TestResponseGolden(t *testing.T) {
	tr := newTestTranslator(t)
	for _, in := range inputs(t, "response", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Status   int             `json:"status"`
				Model    string          `json:"model"`
				Body     json.RawMessage `json:"body"`
				BodyText *string         `json:"body_text"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			body := []byte(c.Body)
			if c.BodyText != nil {
				body = []byte(*c.BodyText)
			}
			out, usage, err := tr.TranslateResponse(&provider.Response{Endpoint: provider.EndpointChat, Status: c.Status, Body: body, Model: c.Model})
			doc := map[string]json.RawMessage{
				"usage": jsonField(t, usage),
				"body":  json.RawMessage("null"),
			}
			if out != nil {
				doc["body"] = canonical(t, out)
			}
			if err != nil {
				if _, ok := errs.KindOf(err); !ok {
					t.Errorf("error wraps no errs sentinel: %v", err)
				}
				doc["error"] = jsonField(t, err.Error())
				doc["error_status"] = jsonField(t, errs.Status(err))
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, jsonField(t, doc)))
		})
	}
}

// runStream feeds in to a new stream in chunks of size n (0: whole) and
// returns the output and the final usage.
func runStream(t testing.TB, tr *translator, info *provider.StreamInfo, in []byte, n int) ([]byte, provider.Usage) {
	s := tr.NewStream(info)
	var out []byte
	var err error
	if n <= 0 {
		n = len(in) + 1
	}
	for len(in) > n {
		if out, err = s.Translate(out, in[:n], false); err != nil {
			t.Fatal(err)
		}
		in = in[n:]
	}
	if out, err = s.Translate(out, in, true); err != nil {
		t.Fatal(err)
	}
	return out, s.Usage()
}

// normaliseSSE re-encodes each data payload that is JSON canonically.
func normaliseSSE(t testing.TB, b []byte) []byte {
	var out []byte
	for _, block := range strings.Split(string(b), "\n\n") {
		if block == "" {
			continue
		}
		for _, line := range strings.Split(block, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.HasPrefix(d, "{") {
				c := canonical(t, []byte(d))
				var compact bytes.Buffer
				_ = json.Compact(&compact, c)
				line = "data: " + compact.String()
			}
			out = append(out, line...)
			out = append(out, '\n')
		}
		out = append(out, '\n')
	}
	return out
}

// TestStreamGolden: testdata/stream/X.in.sse is an Anthropic event stream;
// X.out.sse is the OpenAI stream and X.usage.json the usage reported. Each
// input is fed whole, 1 byte and 7 bytes at a time; the outputs must be
// identical. Files named nousage_* run without include_usage.
func TestStreamGolden(t *testing.T) {
	tr := newTestTranslator(t)
	for _, in := range inputs(t, "stream", ".in.sse") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.sse")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-claude", IncludeUsage: !strings.HasPrefix(name, "nousage"), RequestID: "req-1"}
			whole, usage := runStream(t, tr, info, raw, 0)
			for _, n := range []int{1, 7} {
				got, u := runStream(t, tr, info, raw, n)
				if !bytes.Equal(got, whole) {
					t.Errorf("split %d: output differs from whole-input output\n--- split\n%s\n--- whole\n%s", n, got, whole)
				}
				if u != usage {
					t.Errorf("split %d: usage %+v, whole %+v", n, u, usage)
				}
			}
			if !bytes.HasSuffix(whole, []byte("data: [DONE]\n\n")) || bytes.Count(whole, []byte("[DONE]")) != 1 {
				t.Errorf("stream must end with exactly one data: [DONE]:\n%s", whole)
			}
			base := strings.TrimSuffix(in, ".in.sse")
			checkGolden(t, base+".out.sse", normaliseSSE(t, whole))
			checkGolden(t, base+".usage.json", canonical(t, jsonField(t, usage)))
		})
	}
}
