package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

var fixedNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func init() { now = func() time.Time { return fixedNow } }

const testBaseURL = "https://bedrock-runtime.us-east-1.amazonaws.com"

func testBackend() *config.Backend {
	return &config.Backend{Name: "brk", Provider: "bedrock", BaseURL: testBaseURL,
		AWS: &config.AWSAuth{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}}
}

func newTestTranslator(t testing.TB) *translator {
	t.Helper()
	tr, err := New(testBackend())
	if err != nil {
		t.Fatal(err)
	}
	return tr.(*translator)
}

func canonical(t testing.TB, b []byte) []byte { return golden.Canonical(t, b) }

func checkGolden(t *testing.T, path string, got []byte) { golden.Check(t, path, got) }

// inputs: every bedrock input is JSON, streams included (eventstream
// frames are built from it).
func inputs(t testing.TB, dir string) []string { return golden.Inputs(t, dir, ".in.json") }

func jsonField(t testing.TB, v any) json.RawMessage { return golden.JSONField(t, v) }

// requestCase reads a request input: an OpenAI body, with an optional
// "endpoint" field ("embeddings") that the test strips.
func requestCase(t testing.TB, body []byte) *provider.Request {
	var c struct {
		Endpoint string `json:"endpoint"`
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &c)
	ep := provider.EndpointChat
	if c.Endpoint == "embeddings" {
		ep = provider.EndpointEmbeddings
	}
	return &provider.Request{Endpoint: ep, Body: body, Model: c.Model, Stream: c.Stream}
}

// TestRequestGolden: X.in.json is an OpenAI request; X.out.json the path,
// signed headers and Bedrock body, or the client's error.
func TestRequestGolden(t *testing.T) {
	tr := newTestTranslator(t)
	for _, in := range inputs(t, "request") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(body)
			up, err := tr.TranslateRequest(requestCase(t, body))
			if !bytes.Equal(body, orig) {
				t.Fatal("TranslateRequest modified the client's body")
			}
			doc := map[string]json.RawMessage{}
			if err != nil {
				if !strings.HasPrefix(name, "err_") {
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

type responseCase struct {
	Status   int             `json:"status"`
	Endpoint string          `json:"endpoint"`
	Model    string          `json:"model"`
	Body     json.RawMessage `json:"body"`
	BodyText *string         `json:"body_text"`
}

func (c *responseCase) response() *provider.Response {
	body := []byte(c.Body)
	if c.BodyText != nil {
		body = []byte(*c.BodyText)
	}
	ep := provider.EndpointChat
	if c.Endpoint == "embeddings" {
		ep = provider.EndpointEmbeddings
	}
	return &provider.Response{Endpoint: ep, Status: c.Status, Body: body, Model: c.Model}
}

// TestResponseGolden: X.in.json holds status, endpoint, model and body;
// X.out.json the translated body, usage and error.
func TestResponseGolden(t *testing.T) {
	tr := newTestTranslator(t)
	for _, in := range inputs(t, "response") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var c responseCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			out, usage, err := tr.TranslateResponse(c.response())
			if strings.Contains(name, "invoke") {
				out = fixCreated(out)
			}
			doc := map[string]json.RawMessage{"usage": jsonField(t, usage), "body": json.RawMessage("null")}
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

// frameSpec is one event stream message in a stream input: an event with
// a JSON payload, an exception, or an InvokeModel chunk whose bytes are
// the base64 of the given JSON.
type frameSpec struct {
	Event     string          `json:"event"`
	Exception string          `json:"exception"`
	Bytes     json.RawMessage `json:"bytes"`
	Payload   json.RawMessage `json:"payload"`
}

// encodeFrames encodes a stream input with the SDK's Encoder.
func encodeFrames(t testing.TB, specs []frameSpec) []byte {
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, f := range specs {
		var h eventstream.Headers
		payload := []byte(f.Payload)
		switch {
		case f.Exception != "":
			h.Set(":message-type", eventstream.StringValue("exception"))
			h.Set(":exception-type", eventstream.StringValue(f.Exception))
		case f.Bytes != nil:
			h.Set(":message-type", eventstream.StringValue("event"))
			h.Set(":event-type", eventstream.StringValue("chunk"))
			payload, _ = json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(f.Bytes)})
		default:
			h.Set(":message-type", eventstream.StringValue("event"))
			h.Set(":event-type", eventstream.StringValue(f.Event))
		}
		h.Set(":content-type", eventstream.StringValue("application/json"))
		if err := enc.Encode(&buf, eventstream.Message{Headers: h, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func readStream(t testing.TB, path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var specs []frameSpec
	if err := json.Unmarshal(raw, &specs); err != nil {
		t.Fatal(err)
	}
	return encodeFrames(t, specs)
}

// runStream feeds in at the given cut positions.
func runStream(t testing.TB, tr *translator, info *provider.StreamInfo, in []byte, cuts ...int) ([]byte, provider.Usage) {
	s := tr.NewStream(info)
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

// TestStreamGolden: X.in.json lists event stream messages, encoded with the
// SDK's Encoder; X.out.sse is the OpenAI stream and X.usage.json the usage.
// Each input is fed whole, cut in two at every byte boundary and one byte
// at a time; all outputs must be identical.
func TestStreamGolden(t *testing.T) {
	tr := newTestTranslator(t)
	for _, in := range inputs(t, "stream") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			raw := readStream(t, in)
			info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-model", IncludeUsage: !strings.HasPrefix(name, "nousage"), RequestID: "req-1"}
			whole, usage := runStream(t, tr, info, raw)
			if strings.Contains(name, "invoke") {
				// The Anthropic translator's own clock stamps "created".
				whole = createdRE.ReplaceAll(whole, []byte(`"created":1735787045`))
			}
			check := func(desc string, got []byte, u provider.Usage) {
				t.Helper()
				if !bytes.Equal(got, whole) {
					t.Fatalf("%s: output differs\n--- got\n%s\n--- whole\n%s", desc, got, whole)
				}
				if u != usage {
					t.Fatalf("%s: usage %+v, whole %+v", desc, u, usage)
				}
			}
			for i := 0; i <= len(raw); i++ {
				got, u := runStream(t, tr, info, raw, i)
				if strings.Contains(name, "invoke") {
					got = createdRE.ReplaceAll(got, []byte(`"created":1735787045`))
				}
				check("cut at "+itoa(i), got, u)
			}
			every := make([]int, len(raw))
			for i := range every {
				every[i] = i
			}
			got, u := runStream(t, tr, info, raw, every...)
			if strings.Contains(name, "invoke") {
				got = createdRE.ReplaceAll(got, []byte(`"created":1735787045`))
			}
			check("byte by byte", got, u)
			if !bytes.HasSuffix(whole, []byte("data: [DONE]\n\n")) || bytes.Count(whole, []byte("[DONE]")) != 1 {
				t.Errorf("stream must end with exactly one data: [DONE]:\n%s", whole)
			}
			base := strings.TrimSuffix(in, ".in.json")
			checkGolden(t, base+".out.sse", normaliseSSE(t, whole))
			checkGolden(t, base+".usage.json", canonical(t, jsonField(t, usage)))
		})
	}
}

var createdRE = regexp.MustCompile(`"created":[0-9]+`)

func fixCreated(b []byte) []byte { return createdRE.ReplaceAll(b, []byte(`"created":1735787045`)) }

func itoa(i int) string { return strings.TrimSpace(string(jsonFieldNoT(i))) }

func jsonFieldNoT(v any) []byte { b, _ := json.Marshal(v); return b }
