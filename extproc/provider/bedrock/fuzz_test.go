package bedrock

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

func seedFiles(f *testing.F, pattern string) [][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	if len(files) == 0 {
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
	for _, s := range seedFiles(f, "request/*.in.json") {
		f.Add(s, false, false)
	}
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, body []byte, stream, embeddings bool) {
		orig := bytes.Clone(body)
		ep := provider.EndpointChat
		if embeddings {
			ep = provider.EndpointEmbeddings
		}
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
		if !strings.HasPrefix(up.Path, "/model/") || len(up.Headers) < 2 {
			t.Fatalf("path %q headers %v", up.Path, up.Headers)
		}
	})
}

func FuzzTranslateResponse(f *testing.F) {
	for _, s := range seedFiles(f, "response/*.in.json") {
		var c responseCase
		if err := json.Unmarshal(s, &c); err != nil {
			f.Fatal(err)
		}
		r := c.response()
		f.Add(r.Status, r.Body, r.Endpoint == provider.EndpointEmbeddings)
	}
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, status int, body []byte, embeddings bool) {
		ep := provider.EndpointChat
		if embeddings {
			ep = provider.EndpointEmbeddings
		}
		out, u, err := tr.TranslateResponse(&provider.Response{Endpoint: ep, Status: status, Body: body, Model: "m"})
		if err != nil {
			if _, ok := errs.KindOf(err); !ok {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q:\n%s", body, out)
		}
		if u.TotalTokens < u.PromptTokens+u.CompletionTokens && u.TotalTokens != 0 {
			t.Fatalf("usage %+v", u)
		}
	})
}

// FuzzStream feeds arbitrary bytes (seeded with encoded streams) whole and
// cut where the fuzzer says: outputs must match, errors must wrap a
// sentinel, and a stream that did not fail must end with one [DONE] and
// hold only JSON events.
func FuzzStream(f *testing.F) {
	for _, p := range func() []string { m, _ := filepath.Glob("testdata/stream/*.in.json"); return m }() {
		f.Add(readStream(f, p), []byte{1, 7, 3}, true)
	}
	tr := newTestTranslator(f)
	f.Fuzz(func(t *testing.T, in, cuts []byte, includeUsage bool) {
		info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: includeUsage, RequestID: "r"}
		run := func(split bool) ([]byte, error) {
			s := tr.NewStream(info)
			var out []byte
			var err error
			rest := in
			for i := 0; split && len(rest) > 0; i++ {
				n := 1
				if len(cuts) > 0 {
					n = int(cuts[i%len(cuts)]) + 1
				}
				n = min(n, len(rest))
				if out, err = s.Translate(out, rest[:n], false); err != nil {
					return out, err
				}
				rest = rest[n:]
			}
			if !split {
				if out, err = s.Translate(out, rest, false); err != nil {
					return out, err
				}
			}
			return s.Translate(out, nil, true)
		}
		whole, werr := run(false)
		split, serr := run(true)
		if (werr == nil) != (serr == nil) {
			t.Fatalf("whole err %v, split err %v", werr, serr)
		}
		if werr != nil {
			if _, ok := errs.KindOf(werr); !ok {
				t.Fatalf("error wraps no sentinel: %v", werr)
			}
			return
		}
		if !bytes.Equal(whole, split) {
			t.Fatalf("split output differs\n--- split\n%s\n--- whole\n%s", split, whole)
		}
		if !bytes.HasSuffix(whole, []byte("data: [DONE]\n\n")) || bytes.Count(whole, []byte("data: [DONE]")) != 1 {
			t.Fatalf("no single [DONE] at end:\n%s", whole)
		}
		for _, ev := range strings.Split(strings.TrimSuffix(string(whole), "\n\n"), "\n\n") {
			d, ok := strings.CutPrefix(ev, "data: ")
			if !ok || (d != "[DONE]" && !json.Valid([]byte(d))) {
				t.Fatalf("bad event %q", ev)
			}
		}
	})
}

// FuzzFrameDecoder: arbitrary bytes never panic, and a frame is returned
// only once all its bytes arrived.
func FuzzFrameDecoder(f *testing.F) {
	for _, p := range func() []string { m, _ := filepath.Glob("testdata/stream/*.in.json"); return m }() {
		f.Add(readStream(f, p), uint8(5))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		n := int(step) + 1
		var whole, split int
		var d1 frameDecoder
		d1.Feed(in)
		for {
			_, ok, err := d1.Next()
			if err != nil || !ok {
				break
			}
			whole++
		}
		var d2 frameDecoder
		for i := 0; i < len(in); i += n {
			d2.Feed(in[i:min(i+n, len(in))])
			for {
				_, ok, err := d2.Next()
				if err != nil || !ok {
					break
				}
				split++
			}
		}
		if whole != split {
			t.Fatalf("whole decoded %d frames, split %d", whole, split)
		}
	})
}
