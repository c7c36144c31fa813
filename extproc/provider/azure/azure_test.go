package azure

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
)

func newTestTranslator(t testing.TB, opts map[string]string) provider.Translator {
	t.Helper()
	tr, err := New(&config.Backend{Name: "az", Provider: "azure", BaseURL: "https://res.openai.azure.com",
		Credential: &config.Credential{Key: "az-key"}, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		opts    map[string]string
		wantErr bool
	}{
		{nil, false},
		{map[string]string{"api_version": "2025-04-01-preview"}, false},
		{map[string]string{"api_version": "v1"}, false},
		{map[string]string{"api_version": ""}, true},
		{map[string]string{"deployment": "x"}, true},
	} {
		_, err := New(&config.Backend{Name: "az", Provider: "azure", Options: tc.opts})
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: err %v, want error %v", tc.opts, err, tc.wantErr)
		}
	}
}

func TestTranslateRequest(t *testing.T) {
	const chat = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	const chatStream = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name     string
		opts     map[string]string
		req      provider.Request
		wantPath string
		wantBody string // "" means the client's body is kept (Body nil)
		wantErr  error
	}{
		{
			name:     "chat",
			req:      provider.Request{Endpoint: provider.EndpointChat, Body: []byte(chat), Model: "gpt-4o", ClientModel: "gpt-4o"},
			wantPath: "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
		},
		{
			name:     "alias resolved to deployment, model rewritten",
			req:      provider.Request{Endpoint: provider.EndpointChat, Body: []byte(chat), Model: "my deploy/1", ClientModel: "gpt-4o"},
			wantPath: "/openai/deployments/my%20deploy%2F1/chat/completions?api-version=2024-10-21",
			wantBody: `{"model":"my deploy/1","messages":[{"role":"user","content":"hi"}]}`,
		},
		{
			name:     "stream asks for usage",
			opts:     map[string]string{"api_version": "2025-04-01-preview"},
			req:      provider.Request{Endpoint: provider.EndpointChat, Body: []byte(chatStream), Model: "gpt-4o", ClientModel: "gpt-4o", Stream: true},
			wantPath: "/openai/deployments/gpt-4o/chat/completions?api-version=2025-04-01-preview",
			wantBody: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`,
		},
		{
			name:     "embeddings",
			req:      provider.Request{Endpoint: provider.EndpointEmbeddings, Body: []byte(`{"model":"emb","input":"x"}`), Model: "emb", ClientModel: "emb"},
			wantPath: "/openai/deployments/emb/embeddings?api-version=2024-10-21",
		},
		{
			name:     "completions",
			req:      provider.Request{Endpoint: provider.EndpointCompletions, Body: []byte(`{"model":"inst","prompt":"x"}`), Model: "inst", ClientModel: "inst"},
			wantPath: "/openai/deployments/inst/completions?api-version=2024-10-21",
		},
		{
			name:     "v1 API",
			opts:     map[string]string{"api_version": "v1"},
			req:      provider.Request{Endpoint: provider.EndpointChat, Body: []byte(chat), Model: "gpt-4o", ClientModel: "gpt-4o"},
			wantPath: "/openai/v1/chat/completions",
		},
		{
			name:    "no model",
			req:     provider.Request{Endpoint: provider.EndpointChat, Body: []byte(`{"messages":[]}`)},
			wantErr: errs.ErrInvalidRequest,
		},
		{
			name:    "unknown endpoint",
			req:     provider.Request{Endpoint: provider.EndpointUnknown, Body: []byte(chat), Model: "m"},
			wantErr: errs.ErrUnsupported,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, tc.opts)
			orig := bytes.Clone(tc.req.Body)
			up, err := tr.TranslateRequest(&tc.req)
			if !bytes.Equal(orig, tc.req.Body) {
				t.Fatal("client body modified")
			}
			if tc.wantErr != nil {
				if err == nil || !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if up.Path != tc.wantPath {
				t.Errorf("path %q, want %q", up.Path, tc.wantPath)
			}
			if len(up.Headers) != 1 || up.Headers[0] != (provider.Header{Key: "api-key", Value: "az-key"}) {
				t.Errorf("headers %v", up.Headers)
			}
			if string(up.Body) != tc.wantBody {
				t.Errorf("body %s, want %s", up.Body, tc.wantBody)
			}
		})
	}
}

func TestKeyless(t *testing.T) {
	tr, err := New(&config.Backend{Name: "az", Provider: "azure"})
	if err != nil {
		t.Fatal(err)
	}
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: []byte(`{}`), Model: "m", ClientModel: "m"})
	if err != nil || len(up.Headers) != 0 {
		t.Fatalf("%v %v", up, err)
	}
}

func canonical(t testing.TB, b []byte) []byte { return golden.Canonical(t, b) }

func checkGolden(t *testing.T, path string, got []byte) { golden.Check(t, path, got) }

func jsonField(t testing.TB, v any) json.RawMessage { return golden.JSONField(t, v) }

// TestResponseGolden: testdata/response/X.in.json holds status, endpoint
// and body (or body_text); X.out.json the client body (null: unchanged)
// and usage.
func TestResponseGolden(t *testing.T) {
	tr := newTestTranslator(t, nil)
	files := golden.Inputs(t, "response", ".in.json")
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Status   int             `json:"status"`
				Endpoint string          `json:"endpoint"`
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
			ep := provider.ParseEndpoint(c.Endpoint)
			if ep == provider.EndpointUnknown {
				ep = provider.EndpointChat
			}
			out, u, err := tr.TranslateResponse(&provider.Response{Endpoint: ep, Status: c.Status, Body: body, Model: "m"})
			doc := map[string]json.RawMessage{"usage": jsonField(t, u), "body": json.RawMessage("null")}
			if out != nil {
				doc["body"] = canonical(t, out)
			}
			if err != nil {
				doc["error"] = jsonField(t, err.Error())
			}
			if c.Status >= 400 && (out == nil || !json.Valid(out)) {
				t.Errorf("error body not rewritten: %s", out)
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, jsonField(t, doc)))
		})
	}
}

func runStream(t testing.TB, tr provider.Translator, info *provider.StreamInfo, in []byte, n int) ([]byte, provider.Usage) {
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

// TestStreamGolden: Azure streams, fed whole and split; nousage_* files run
// without include_usage.
func TestStreamGolden(t *testing.T) {
	tr := newTestTranslator(t, nil)
	files := golden.Inputs(t, "stream", ".in.sse")
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".in.sse")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: !strings.HasPrefix(name, "nousage"), RequestID: "r"}
			whole, usage := runStream(t, tr, info, raw, 0)
			for _, n := range []int{1, 5, 13} {
				got, u := runStream(t, tr, info, raw, n)
				if !bytes.Equal(got, whole) || u != usage {
					t.Errorf("split %d differs:\n%s\nvs\n%s", n, got, whole)
				}
			}
			base := strings.TrimSuffix(in, ".in.sse")
			checkGolden(t, base+".out.sse", whole)
			checkGolden(t, base+".usage.json", canonical(t, jsonField(t, usage)))
		})
	}
}

func FuzzErrorBody(f *testing.F) {
	files, _ := filepath.Glob("testdata/response/*.in.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		var c struct {
			Status int             `json:"status"`
			Body   json.RawMessage `json:"body"`
		}
		_ = json.Unmarshal(b, &c)
		f.Add(c.Status, []byte(c.Body))
	}
	f.Add(500, []byte("<html>\xff</html>"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		out := ErrorBody(status, body)
		var e struct {
			Error struct{ Message, Type string } `json:"error"`
		}
		if json.Unmarshal(out, &e) != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Fatalf("bad error body %s from %q", out, body)
		}
	})
}

func BenchmarkTranslateRequest(b *testing.B) {
	tr := newTestTranslator(b, nil)
	req := &provider.Request{Endpoint: provider.EndpointChat, Stream: true, Model: "gpt-4o", ClientModel: "gpt-4o",
		Body: []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"What is the weather in Paris today?"}]}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkErrorBody(b *testing.B) {
	body, err := os.ReadFile("testdata/response/err_400_content_filter.in.json")
	if err != nil {
		b.Fatal(err)
	}
	var c struct {
		Body json.RawMessage `json:"body"`
	}
	_ = json.Unmarshal(body, &c)
	b.ReportAllocs()
	for b.Loop() {
		_ = ErrorBody(400, c.Body)
	}
}
