package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

// canonical re-encodes JSON with sorted keys and indentation so goldens are
// compared by meaning, not bytes. Test-only: production code never
// unmarshals bodies.
func canonical(t testing.TB, b []byte) []byte { return golden.Canonical(t, b) }

func checkGolden(t *testing.T, path string, got []byte) { golden.Check(t, path, got) }

func inputs(t testing.TB, dir, suffix string) []string { return golden.Inputs(t, dir, suffix) }

func jsonField(t testing.TB, v any) json.RawMessage { return golden.JSONField(t, v) }

// errorDoc records an error as the client would see it.
func errorDoc(t *testing.T, name string, err error, doc map[string]json.RawMessage) {
	t.Helper()
	if !strings.HasPrefix(name, "err_") {
		t.Errorf("unexpected error: %v", err)
	}
	if _, ok := errs.KindOf(err); !ok {
		t.Errorf("error wraps no errs sentinel: %v", err)
	}
	status, body := Error(err)
	doc["status"] = jsonField(t, status)
	doc["error"] = canonical(t, body)
}

// TestRequestGolden: testdata/request/X.in.json is a Messages request;
// X.out.json holds the OpenAI body, model and stream flag, or the status
// and Anthropic error body the client would get.
func TestRequestGolden(t *testing.T) {
	tr := New(nil)
	for _, in := range inputs(t, "request", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(body)
			out, model, stream, err := tr.Request(body)
			if !bytes.Equal(body, orig) {
				t.Fatal("Request modified the client's body")
			}
			doc := map[string]json.RawMessage{}
			if err != nil {
				errorDoc(t, name, err, doc)
			} else {
				if strings.HasPrefix(name, "err_") {
					t.Errorf("expected an error")
				}
				doc["model"] = jsonField(t, model)
				doc["stream"] = jsonField(t, stream)
				doc["body"] = canonical(t, out)
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, jsonField(t, doc)))
		})
	}
}

// TestResponseGolden: testdata/response/X.in.json holds the status, the
// model the client asked for and the OpenAI body (body, or body_text when
// it is not JSON); X.out.json the Anthropic body or the error. err_* files
// are error statuses.
func TestResponseGolden(t *testing.T) {
	tr := New(nil)
	for _, in := range inputs(t, "response", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			c := readResponseCase(t, in)
			out, err := tr.Response(c.Status, c.body, c.Model)
			doc := map[string]json.RawMessage{"body": json.RawMessage("null")}
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
			if c.Status >= 400 {
				checkErrorBody(t, out)
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, jsonField(t, doc)))
		})
	}
}

type responseCase struct {
	Status   int             `json:"status"`
	Model    string          `json:"model"`
	Body     json.RawMessage `json:"body"`
	BodyText *string         `json:"body_text"`
	body     []byte
}

func readResponseCase(t testing.TB, path string) responseCase {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c responseCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	c.body = []byte(c.Body)
	if c.BodyText != nil {
		c.body = []byte(*c.BodyText)
	}
	return c
}

var anthropicErrorTypes = map[string]bool{
	"invalid_request_error": true, "authentication_error": true, "permission_error": true,
	"not_found_error": true, "request_too_large": true, "rate_limit_error": true,
	"api_error": true, "overloaded_error": true,
}

// checkErrorBody checks Anthropic's documented error shape.
func checkErrorBody(t testing.TB, b []byte) {
	t.Helper()
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, b)
	}
	if e.Type != "error" || !anthropicErrorTypes[e.Error.Type] || e.Error.Message == "" {
		t.Fatalf("bad Anthropic error body: %s", b)
	}
}

// runStream feeds in to a new stream with the given cut points and returns
// the output and the usage.
func runStream(t testing.TB, in []byte, cuts ...int) ([]byte, provider.Usage) {
	s := New(nil).NewStream("my-claude", "req-1")
	var out []byte
	var err error
	prev := 0
	for _, c := range cuts {
		if out, err = s.Translate(out, in[prev:c], false); err != nil {
			t.Fatal(err)
		}
		prev = c
	}
	if out, err = s.Translate(out, in[prev:], true); err != nil {
		t.Fatal(err)
	}
	return out, s.Usage()
}

// normaliseSSE re-encodes each data payload canonically.
func normaliseSSE(t testing.TB, b []byte) []byte {
	var out []byte
	for _, block := range strings.Split(string(b), "\n\n") {
		if block == "" {
			continue
		}
		for _, line := range strings.Split(block, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.HasPrefix(d, "{") {
				var compact bytes.Buffer
				_ = json.Compact(&compact, canonical(t, []byte(d)))
				line = "data: " + compact.String()
			}
			out = append(out, line...)
			out = append(out, '\n')
		}
		out = append(out, '\n')
	}
	return out
}

// TestStreamGolden: testdata/stream/X.in.sse is an OpenAI stream; X.out.sse
// the Anthropic stream and X.usage.json the usage. Each input is fed whole,
// cut in two at every byte position, and byte by byte: outputs and usage
// must be identical, and the output must follow Anthropic's event order.
func TestStreamGolden(t *testing.T) {
	for _, in := range inputs(t, "stream", ".in.sse") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.sse")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			whole, usage := runStream(t, raw)
			check := func(how string, got []byte, u provider.Usage) {
				t.Helper()
				if !bytes.Equal(got, whole) {
					t.Fatalf("%s: output differs from whole-input output\n--- got\n%s\n--- whole\n%s", how, got, whole)
				}
				if u != usage {
					t.Fatalf("%s: usage %+v, whole %+v", how, u, usage)
				}
			}
			for i := 0; i <= len(raw); i++ {
				got, u := runStream(t, raw, i)
				check(fmt.Sprintf("cut at %d", i), got, u)
			}
			bytewise := make([]int, len(raw))
			for i := range bytewise {
				bytewise[i] = i
			}
			got, u := runStream(t, raw, bytewise...)
			check("byte by byte", got, u)
			if err := validateEvents(whole); err != nil {
				t.Fatalf("%v\n%s", err, whole)
			}
			base := strings.TrimSuffix(in, ".in.sse")
			checkGolden(t, base+".out.sse", normaliseSSE(t, whole))
			checkGolden(t, base+".usage.json", canonical(t, jsonField(t, usage)))
		})
	}
}

// TestCountGolden: testdata/count/X.in.json is a count_tokens request;
// X.out.json the answer or the error.
func TestCountGolden(t *testing.T) {
	tr := New(nil)
	for _, in := range inputs(t, "count", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := tr.CountTokens(body)
			doc := map[string]json.RawMessage{}
			if err != nil {
				errorDoc(t, name, err, doc)
			} else {
				doc["body"] = canonical(t, out)
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, jsonField(t, doc)))
		})
	}
}
