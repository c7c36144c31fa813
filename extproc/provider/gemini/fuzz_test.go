package gemini

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

func seeds(f *testing.F, pattern string) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s", pattern)
	}
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzTranslateRequest(f *testing.F) {
	for _, s := range seeds(f, "request/*.in.json") {
		f.Add(s, false, false)
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"\u0000\ud800"}]}`), true, false)
	f.Add([]byte(`{"model":"m","input":["a","\ud800"]}`), false, true)
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, body []byte, stream, embeddings bool) {
		ep := provider.EndpointChat
		if embeddings {
			ep = provider.EndpointEmbeddings
		}
		orig := bytes.Clone(body)
		up, err := tr.TranslateRequest(&provider.Request{Endpoint: ep, Body: body, Stream: stream})
		if !bytes.Equal(body, orig) {
			t.Fatal("input modified")
		}
		if err != nil {
			if _, ok := errs.KindOf(err); !ok {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if !json.Valid(up.Body) {
			t.Fatalf("invalid JSON out of %s:\n%s", body, up.Body)
		}
		if !strings.HasPrefix(up.Path, "/v1beta/models/") {
			t.Fatalf("path %q", up.Path)
		}
		if ep == provider.EndpointChat {
			var v struct {
				Contents []json.RawMessage `json:"contents"`
			}
			if err := json.Unmarshal(up.Body, &v); err != nil || len(v.Contents) == 0 {
				t.Fatalf("no contents (%v): %s", err, up.Body)
			}
		}
	})
}

func FuzzTranslateResponse(f *testing.F) {
	for _, s := range seeds(f, "response/*.in.json") {
		var c struct {
			Status   int             `json:"status"`
			Body     json.RawMessage `json:"body"`
			BodyText string          `json:"body_text"`
		}
		if err := json.Unmarshal(s, &c); err != nil {
			f.Fatal(err)
		}
		f.Add(c.Status, append([]byte(c.Body), c.BodyText...), false)
		f.Add(c.Status, append([]byte(c.Body), c.BodyText...), true)
	}
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, status int, body []byte, embeddings bool) {
		ep := provider.EndpointChat
		if embeddings {
			ep = provider.EndpointEmbeddings
		}
		out, u, err := tr.TranslateResponse(&provider.Response{Endpoint: ep, Status: status, Body: body, Model: "m"})
		if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Fatalf("usage %+v", u)
		}
		if err != nil {
			if _, ok := errs.KindOf(err); !ok {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q:\n%s", body, out)
		}
		if status >= 400 {
			var e struct {
				Error struct{ Message, Type string } `json:"error"`
			}
			if json.Unmarshal(out, &e) != nil || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("bad error body: %s", out)
			}
		}
	})
}

// FuzzStream: whole and split feeding must agree, every event must be one
// JSON data line or the final [DONE].
func FuzzStream(f *testing.F) {
	for _, s := range seeds(f, "stream/*.in.sse") {
		f.Add(s, []byte{1, 7, 3}, true)
	}
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, in, cuts []byte, includeUsage bool) {
		info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: includeUsage, RequestID: "r"}
		whole, wu := runStream(t, tr, info, in, 0)
		s := tr.NewStream(info)
		var split []byte
		var err error
		rest := in
		for i := 0; len(rest) > 0; i++ {
			n := 1
			if len(cuts) > 0 {
				n = int(cuts[i%len(cuts)]) + 1
			}
			n = min(n, len(rest))
			if split, err = s.Translate(split, rest[:n], false); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if split, err = s.Translate(split, nil, true); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(split, whole) {
			t.Fatalf("split output differs\n--- split\n%s\n--- whole\n%s", split, whole)
		}
		if s.Usage() != wu {
			t.Fatalf("usage differs: %+v vs %+v", s.Usage(), wu)
		}
		events := strings.Split(strings.TrimSuffix(string(whole), "\n\n"), "\n\n")
		for i, ev := range events {
			d, ok := strings.CutPrefix(ev, "data: ")
			if !ok || strings.Contains(d, "\n") {
				t.Fatalf("event %d is not one data line: %q", i, ev)
			}
			if d == "[DONE]" {
				if i != len(events)-1 {
					t.Fatalf("[DONE] before the end:\n%s", whole)
				}
				continue
			}
			if !json.Valid([]byte(d)) {
				t.Fatalf("event %d is not JSON: %s", i, d)
			}
		}
		if events[len(events)-1] != "data: [DONE]" {
			t.Fatalf("no [DONE] at end:\n%s", whole)
		}
	})
}
