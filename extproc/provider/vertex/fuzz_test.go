package vertex

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

func seeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzTranslateRequest: any body gives a request with valid JSON or an
// error wrapping an errs sentinel, never a panic.
func FuzzTranslateRequest(f *testing.F) {
	seeds(f, "testdata/request/*.in.json")
	tr := newKeyless(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ep := range []provider.Endpoint{provider.EndpointChat, provider.EndpointEmbeddings} {
			for _, model := range []string{"", "gemini-2.5-flash", "claude-haiku-4-5@20251001"} {
				up, err := tr.TranslateRequest(&provider.Request{Endpoint: ep, Body: body, Model: model})
				if err != nil {
					if _, ok := errs.KindOf(err); !ok {
						t.Fatalf("error %v wraps no sentinel", err)
					}
					continue
				}
				if !gjson.ValidBytes(up.Body) {
					t.Fatalf("invalid upstream body %q for %q", up.Body, body)
				}
			}
		}
	})
}

// FuzzTranslateResponse: any reply, chat or embeddings, gives valid JSON
// or ErrUpstreamBadReply.
func FuzzTranslateResponse(f *testing.F) {
	seeds(f, "testdata/response/*.in.json")
	tr := newKeyless(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ep := range []provider.Endpoint{provider.EndpointChat, provider.EndpointEmbeddings} {
			for _, status := range []int{200, 429} {
				out, _, err := tr.TranslateResponse(&provider.Response{Endpoint: ep, Status: status, Body: body, Model: "m"})
				if err != nil {
					if !errors.Is(err, errs.ErrUpstreamBadReply) {
						t.Fatalf("error %v", err)
					}
					continue
				}
				if out != nil && !gjson.ValidBytes(out) {
					t.Fatalf("invalid output %q for %q", out, body)
				}
			}
		}
	})
}

// FuzzStream: any stream, split anywhere, translates without panicking and
// the same whole or split.
func FuzzStream(f *testing.F) {
	seeds(f, "testdata/stream/*.in.sse")
	tr := newKeyless(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		info := &provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "m", IncludeUsage: true, RequestID: "r"}
		whole, u1 := runStream(t, tr.NewStream(info), in, 0)
		split, u2 := runStream(t, tr.NewStream(info), in, 3)
		if string(zeroCreated(whole)) != string(zeroCreated(split)) || u1 != u2 {
			t.Fatalf("split output differs for %q", in)
		}
	})
}
