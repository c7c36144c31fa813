package vertex

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/internal/golden"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/gemini"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// newKeyless is a translator without credential: no token, no header.
func newKeyless(t testing.TB) *translator {
	t.Helper()
	tr, err := New(&config.Backend{Name: "vx", Provider: "vertex", BaseURL: "https://us-east5-aiplatform.googleapis.com",
		Options: map[string]string{"project": "my-proj", "location": "us-east5"}})
	if err != nil {
		t.Fatal(err)
	}
	return tr.(*translator)
}

// canonical re-encodes JSON with sorted keys, "created" zeroed (the inner
// translators' clocks are their own).
func canonical(t testing.TB, b []byte) []byte {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	if m, ok := v.(map[string]any); ok {
		if _, ok := m["created"]; ok {
			m["created"] = 0
		}
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

var createdRE = regexp.MustCompile(`"created":\d+`)

func zeroCreated(b []byte) []byte { return createdRE.ReplaceAll(b, []byte(`"created":0`)) }

func checkGolden(t *testing.T, path string, got []byte) { golden.Check(t, path, got) }

func inputs(t *testing.T, dir, suffix string) []string { return golden.Inputs(t, dir, suffix) }

func endpointOf(name string) provider.Endpoint {
	if strings.HasPrefix(name, "emb_") || strings.HasPrefix(name, "err_emb_") {
		return provider.EndpointEmbeddings
	}
	return provider.EndpointChat
}

// TestRequestGolden: testdata/request/X.in.json is an OpenAI request;
// X.out.json the upstream path, headers and body, or the error.
func TestRequestGolden(t *testing.T) {
	tr := newKeyless(t)
	for _, in := range inputs(t, "request", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			req := &provider.Request{Endpoint: endpointOf(name), Body: body}
			up, err := tr.TranslateRequest(req)
			var got []byte
			if strings.HasPrefix(name, "err_") {
				if err == nil {
					t.Fatalf("no error; body %s", up.Body)
				}
				k, ok := errs.KindOf(err)
				if !ok {
					t.Fatalf("error %v wraps no errs sentinel", err)
				}
				got, _ = json.Marshal(map[string]any{"status": k.Status, "code": k.Code, "error": err.Error()})
			} else {
				if err != nil {
					t.Fatal(err)
				}
				got, _ = json.Marshal(map[string]any{"path": up.Path, "headers": up.Headers, "body": json.RawMessage(up.Body)})
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, got))
		})
	}
}

// TestRequestReusesInnerBodies: the bodies are exactly the gemini and
// anthropic translators' (anthropic with model swapped for
// anthropic_version), so the two stay in step.
func TestRequestReusesInnerBodies(t *testing.T) {
	tr := newKeyless(t)
	for _, name := range []string{"gemini_chat", "gemini_stream", "claude_chat", "claude_stream"} {
		body, err := os.ReadFile("testdata/request/" + name + ".in.json")
		if err != nil {
			t.Fatal(err)
		}
		req := &provider.Request{Endpoint: provider.EndpointChat, Body: body}
		up, err := tr.TranslateRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		if strings.HasPrefix(name, "claude") {
			a, err := messages.TranslateChat(req)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(a, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "model")
			m["anthropic_version"] = AnthropicVersion
			want, _ = json.Marshal(m)
		} else {
			want, _, err = gemini.TranslateChat(req)
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(canonical(t, up.Body), canonical(t, want)) {
			t.Errorf("%s: body\n%s\nwant\n%s", name, up.Body, want)
		}
	}
}

func TestPaths(t *testing.T) {
	cases := []struct {
		opts        map[string]string
		endpoint    provider.Endpoint
		model, body string
		stream      bool
		want        string
	}{
		{map[string]string{"project": "p", "location": "us-central1"}, provider.EndpointChat, "gemini-2.5-flash", `{"messages":[{"role":"user","content":"x"}]}`, false,
			"/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"},
		{map[string]string{"project": "p", "location": "us-central1"}, provider.EndpointChat, "models/gemini-2.5-flash", `{"messages":[{"role":"user","content":"x"}]}`, true,
			"/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{map[string]string{"project": "p", "location": "global"}, provider.EndpointChat, "claude-opus-4-1@20250805", `{"messages":[{"role":"user","content":"x"}]}`, false,
			"/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-4-1@20250805:rawPredict"},
		{map[string]string{"project": "p", "location": "us-east5"}, provider.EndpointChat, "claude-opus-4-1@20250805", `{"stream":true,"messages":[{"role":"user","content":"x"}]}`, false,
			"/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-opus-4-1@20250805:streamRawPredict"},
		{map[string]string{"project": "p", "location": "europe-west4", "api_version": "v1beta1"}, provider.EndpointEmbeddings, "gemini-embedding-001", `{"input":"x"}`, false,
			"/v1beta1/projects/p/locations/europe-west4/publishers/google/models/gemini-embedding-001:predict"},
		{map[string]string{"project": "my proj/x", "location": "us-central1"}, provider.EndpointChat, "tuned model", `{"messages":[{"role":"user","content":"x"}]}`, false,
			"/v1/projects/my%20proj%2Fx/locations/us-central1/publishers/google/models/tuned%20model:generateContent"},
	}
	for _, c := range cases {
		tr, err := New(&config.Backend{Name: "vx", Provider: "vertex", Options: c.opts})
		if err != nil {
			t.Fatal(err)
		}
		up, err := tr.TranslateRequest(&provider.Request{Endpoint: c.endpoint, Model: c.model, Body: []byte(c.body), Stream: c.stream})
		if err != nil {
			t.Fatalf("%s: %v", c.model, err)
		}
		if up.Path != c.want {
			t.Errorf("path %s, want %s", up.Path, c.want)
		}
		if len(up.Headers) != 0 {
			t.Errorf("keyless backend sent headers %v", up.Headers)
		}
	}
}

// A credential that is not JSON is an access token minted elsewhere: it
// is sent as is.
func TestStaticAccessToken(t *testing.T) {
	tr, err := New(&config.Backend{Name: "vx", Provider: "vertex", Options: map[string]string{"project": "p", "location": "us-central1"},
		Credential: &config.Credential{Key: config.Secret("ya29.static")}})
	if err != nil {
		t.Fatal(err)
	}
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Model: "gemini-2.5-flash", ClientModel: "gemini-2.5-flash",
		Body: []byte(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Headers) != 1 || up.Headers[0].Key != "authorization" || up.Headers[0].Value != "Bearer ya29.static" {
		t.Errorf("headers = %v", up.Headers)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		opts map[string]string
		cred string
		want string
	}{
		{"no location", map[string]string{"project": "p"}, "", "location is required"},
		{"bad location", map[string]string{"project": "p", "location": "us central"}, "", "not a region"},
		{"no project", map[string]string{"location": "us-central1"}, "", "project is required"},
		{"unknown option", map[string]string{"project": "p", "location": "l", "region": "x"}, "", `unknown option "region"`},
		{"empty version", map[string]string{"project": "p", "location": "l", "api_version": ""}, "", "api_version"},
		{"user credential", map[string]string{"project": "p", "location": "l"}, `{"type":"authorized_user","client_id":"a","client_secret":"b","refresh_token":"c"}`, "service-account"},
		{"no pem", map[string]string{"project": "p", "location": "l"}, `{"type":"service_account","client_email":"a@b","private_key":"nope","token_uri":"http://127.0.0.1:1/token"}`, "PEM"},
	}
	for _, c := range cases {
		b := &config.Backend{Name: "vx", Provider: "vertex", Options: c.opts}
		if c.cred != "" {
			b.Credential = &config.Credential{Key: config.Secret(c.cred)}
		}
		_, err := New(b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "ya29") {
			t.Errorf("%s: the credential leaked into the error: %v", c.name, err)
		}
	}
}

func TestDefaultBaseURL(t *testing.T) {
	for loc, want := range map[string]string{
		"us-central1": "https://us-central1-aiplatform.googleapis.com",
		"global":      "https://aiplatform.googleapis.com",
	} {
		yaml := "version: " + config.Version + "\nbackends:\n- name: vx\n  provider: vertex\n  options: {project: p, location: " + loc + "}\nmodels:\n- name: m\n  backends: [vx]\n"
		cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Backends[0].BaseURL; got != want {
			t.Errorf("%s: base_url %q, want %q", loc, got, want)
		}
	}
}

func statusOf(name string) int {
	for _, part := range strings.Split(name, "_") {
		if n, err := strconv.Atoi(part); err == nil && n >= 100 {
			return n
		}
	}
	return 200
}

// TestResponseGolden: testdata/response/X.in.json is a Vertex reply (status
// from a number in the name, else 200); X.out.json the OpenAI body and
// usage, or the error.
func TestResponseGolden(t *testing.T) {
	tr := newKeyless(t)
	for _, in := range inputs(t, "response", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, usage, err := tr.TranslateResponse(&provider.Response{Endpoint: endpointOf(name), Status: statusOf(name), Body: body, Model: "my-model"})
			var got []byte
			if err != nil {
				if !errors.Is(err, errs.ErrUpstreamBadReply) {
					t.Fatalf("error %v does not wrap ErrUpstreamBadReply", err)
				}
				got, _ = json.Marshal(map[string]any{"error": err.Error()})
			} else {
				got, _ = json.Marshal(map[string]any{"body": json.RawMessage(zeroCreated(out)), "usage": usage})
			}
			checkGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", canonical(t, got))
		})
	}
}

func runStream(t testing.TB, s provider.Stream, in []byte, n int) ([]byte, provider.Usage) {
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

// TestStreamGolden: testdata/stream/X.in.sse is a streamRawPredict or
// streamGenerateContent stream. Fed whole and 1, 7 and 64 bytes at a time
// it gives what the matching inner translator gives; X.out.sse holds the
// result ("created" zeroed) and its usage.
func TestStreamGolden(t *testing.T) {
	tr := newKeyless(t)
	for _, in := range inputs(t, "stream", ".in.sse") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.sse")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "my-model", IncludeUsage: true, RequestID: "req-1"}
			inner := gemini.NewStream(info, 0)
			if strings.HasPrefix(name, "claude") {
				inner = messages.NewStream(info, 0)
			}
			want, wantUsage := runStream(t, inner, raw, 0)
			for _, n := range []int{0, 1, 7, 64} {
				got, u := runStream(t, tr.NewStream(info), raw, n)
				if !bytes.Equal(zeroCreated(got), zeroCreated(want)) {
					t.Errorf("split %d: output differs from the inner translator's\n--- got\n%s\n--- want\n%s", n, got, want)
				}
				if u != wantUsage {
					t.Errorf("split %d: usage %+v, want %+v", n, u, wantUsage)
				}
			}
			usage, _ := json.Marshal(wantUsage)
			checkGolden(t, strings.TrimSuffix(in, ".in.sse")+".out.sse", append(append(zeroCreated(want), "usage: "...), append(usage, '\n')...))
		})
	}
}

func TestSniff(t *testing.T) {
	cases := []struct {
		in            string
		anth, decided bool
	}{
		{"event: message_start\ndata: {}\n\n", true, true},
		{"data: {\"type\":\"message_start\"}\n\n", true, true},
		{"data: {\"candidates\":[]}\r\n\r\n", false, true},
		{"\r\ndata: {\"error\":{\"code\":500}}\n\n", false, true},
		{"data: {\"candidates\":[", false, false},
		{"event: message_start\r\n", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		anth, decided := sniff([]byte(c.in))
		if anth != c.anth || decided != c.decided {
			t.Errorf("sniff(%q) = %v, %v; want %v, %v", c.in, anth, decided, c.anth, c.decided)
		}
	}
}
