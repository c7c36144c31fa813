package golden

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

// NativeSuite runs the golden files of a translator's native Messages
// passthrough (provider.EndpointMessages), under testdata/native:
//
//   - request/X.in.json: {"model": the upstream model (default: the
//     body's), "beta": the anthropic-beta header, "body": the client's
//     Messages body}; X.out.json: the upstream path, headers and body, or
//     the client's status and error.
//   - response/X.in.json: {"status", "model": the client's name, "body"};
//     X.out.json: the body the client gets, whether it is the upstream's
//     unchanged, the usage and any error.
//   - stream/X<StreamSuffix>, read by ReadStream: the upstream's stream;
//     X.out.sse: the client's stream, byte for byte; X.usage.json: the
//     usage and the error the stream ended with. Each input is fed whole,
//     cut in two at every byte offset and one byte at a time: every run
//     must give the same bytes, usage and error.
type NativeSuite struct {
	Translator   provider.Translator
	StreamSuffix string
	// ReadStream turns a stream input into the upstream's bytes (nil: the
	// file as it is).
	ReadStream func(t testing.TB, path string) []byte
}

// Run runs the three suites.
func (s *NativeSuite) Run(t *testing.T) {
	t.Run("request", s.requests)
	t.Run("response", s.responses)
	t.Run("stream", s.streams)
}

func (s *NativeSuite) requests(t *testing.T) {
	for _, in := range Inputs(t, "native/request", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			var c struct {
				Model string          `json:"model"`
				Beta  string          `json:"beta"`
				Body  json.RawMessage `json:"body"`
			}
			readJSON(t, in, &c)
			var head struct {
				Model  string `json:"model"`
				Stream bool   `json:"stream"`
			}
			_ = json.Unmarshal(c.Body, &head)
			body := bytes.Clone(c.Body)
			req := &provider.Request{Endpoint: provider.EndpointMessages, Body: body, Model: c.Model,
				ClientModel: head.Model, Stream: head.Stream, AnthropicBeta: c.Beta}
			if req.Model == "" {
				req.Model = head.Model
			}
			up, err := s.Translator.TranslateRequest(req)
			if !bytes.Equal(body, c.Body) {
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
				doc["status"] = JSONField(t, errs.Status(err))
				doc["error"] = errs.Body(err)
				if r := errs.RuleOf(err); r != "" {
					doc["rule"] = JSONField(t, r)
				}
			} else {
				if strings.HasPrefix(name, "err_") {
					t.Errorf("expected an error")
				}
				headers := map[string]string{}
				for _, h := range up.Headers {
					headers[h.Key] = h.Value
				}
				doc["path"] = JSONField(t, up.Path)
				doc["headers"] = JSONField(t, headers)
				doc["body_unchanged"] = JSONField(t, up.Body == nil)
				doc["body"] = up.Body
				if up.Body == nil {
					doc["body"] = body
				}
			}
			Check(t, strings.TrimSuffix(in, ".in.json")+".out.json", Canonical(t, JSONField(t, doc)))
		})
	}
}

func (s *NativeSuite) responses(t *testing.T) {
	for _, in := range Inputs(t, "native/response", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			var c struct {
				Status   int             `json:"status"`
				Model    string          `json:"model"`
				Body     json.RawMessage `json:"body"`
				BodyText *string         `json:"body_text"`
			}
			readJSON(t, in, &c)
			body := []byte(c.Body)
			if c.BodyText != nil {
				body = []byte(*c.BodyText)
			}
			orig := bytes.Clone(body)
			out, usage, err := s.Translator.TranslateResponse(&provider.Response{Endpoint: provider.EndpointMessages, Status: c.Status, Body: body, Model: c.Model})
			if !bytes.Equal(body, orig) {
				t.Fatal("TranslateResponse modified the upstream's body")
			}
			doc := map[string]json.RawMessage{"usage": JSONField(t, usage), "unchanged": JSONField(t, out == nil)}
			if err != nil {
				if _, ok := errs.KindOf(err); !ok {
					t.Errorf("error wraps no errs sentinel: %v", err)
				}
				doc["error"] = JSONField(t, err.Error())
				doc["error_status"] = JSONField(t, errs.Status(err))
			} else {
				if out == nil {
					out = body
				}
				doc["body"] = Canonical(t, out)
			}
			Check(t, strings.TrimSuffix(in, ".in.json")+".out.json", Canonical(t, JSONField(t, doc)))
		})
	}
}

// nativeRun is one stream run's result.
type nativeRun struct {
	out   []byte
	usage provider.Usage
	err   string
}

func (s *NativeSuite) run(in []byte, cuts ...int) nativeRun {
	st := s.Translator.NewStream(&provider.StreamInfo{Endpoint: provider.EndpointMessages, Model: "my-claude", RequestID: "req-1"})
	var r nativeRun
	var err error
	prev := 0
	for _, c := range cuts {
		if r.out, err = st.Translate(r.out, in[prev:c], false); err != nil {
			break
		}
		prev = c
	}
	if err == nil {
		r.out, err = st.Translate(r.out, in[prev:], true)
	}
	if err != nil {
		r.err = err.Error()
	}
	r.usage = st.Usage()
	return r
}

func (s *NativeSuite) streams(t *testing.T) {
	for _, in := range Inputs(t, "native/stream", s.StreamSuffix) {
		name := strings.TrimSuffix(filepath.Base(in), s.StreamSuffix)
		t.Run(name, func(t *testing.T) {
			var raw []byte
			if s.ReadStream != nil {
				raw = s.ReadStream(t, in)
			} else {
				var err error
				if raw, err = os.ReadFile(in); err != nil {
					t.Fatal(err)
				}
			}
			whole := s.run(raw)
			same := func(desc string, r nativeRun) {
				t.Helper()
				if !bytes.Equal(r.out, whole.out) || r.usage != whole.usage || r.err != whole.err {
					t.Fatalf("%s: differs from the whole input's run\n--- got (%+v, %q)\n%s\n--- whole (%+v, %q)\n%s",
						desc, r.usage, r.err, r.out, whole.usage, whole.err, whole.out)
				}
			}
			for i := 0; i <= len(raw); i++ {
				same("cut at "+strconv.Itoa(i), s.run(raw, i))
			}
			every := make([]int, len(raw))
			for i := range every {
				every[i] = i
			}
			same("byte by byte", s.run(raw, every...))
			base := strings.TrimSuffix(in, s.StreamSuffix)
			Check(t, base+".out.sse", whole.out)
			doc := map[string]json.RawMessage{"usage": JSONField(t, whole.usage), "error": JSONField(t, whole.err)}
			Check(t, base+".usage.json", Canonical(t, JSONField(t, doc)))
		})
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
