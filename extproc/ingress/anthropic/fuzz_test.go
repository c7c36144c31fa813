package anthropic

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
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

// FuzzRequest: any body gives valid OpenAI JSON with the required fields,
// or an error wrapping a sentinel; the input is never modified; and
// count_tokens accepts exactly what Request accepts once max_tokens is set.
func FuzzRequest(f *testing.F) {
	for _, s := range seeds(f, "request/*.in.json") {
		f.Add(s)
	}
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"\u0000\ud800"}]}`))
	tr := New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		out, model, stream, err := tr.Request(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("input modified")
		}
		_, cerr := tr.CountTokens(body)
		if err != nil {
			if _, ok := errs.KindOf(err); !ok {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if cerr != nil {
			t.Fatalf("Request accepted what CountTokens rejected: %v", cerr)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %s:\n%s", body, out)
		}
		var v struct {
			Model         string            `json:"model"`
			MaxTokens     int64             `json:"max_completion_tokens"`
			Messages      []json.RawMessage `json:"messages"`
			Stream        bool              `json:"stream"`
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if v.Model != model || model == "" || v.MaxTokens < 1 || v.Stream != stream {
			t.Fatalf("fields do not match: model %q stream %v: %s", model, stream, out)
		}
		if stream && (v.StreamOptions == nil || !v.StreamOptions.IncludeUsage) {
			t.Fatalf("stream without include_usage: %s", out)
		}
	})
}

// FuzzResponse: any status and body give a valid Messages body (or error
// body for status >= 400), or an error wrapping a sentinel.
func FuzzResponse(f *testing.F) {
	for _, p := range seedsPaths(f, "response/*.in.json") {
		c := readResponseCase(f, p)
		f.Add(c.Status, c.body)
	}
	tr := New(nil)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		out, err := tr.Response(status, body, "m")
		if err != nil {
			if _, ok := errs.KindOf(err); !ok {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if status >= 400 {
			checkErrorBody(t, out)
			return
		}
		var m struct {
			ID, Type, Role, Model string
			StopReason            string            `json:"stop_reason"`
			Content               []json.RawMessage `json:"content"`
			Usage                 map[string]int64  `json:"usage"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if m.Type != "message" || m.Role != "assistant" || len(m.ID) < 5 || m.ID[:4] != "msg_" || m.StopReason == "" || m.Model != "m" {
			t.Fatalf("bad message: %s", out)
		}
		for _, b := range m.Content {
			var blk struct {
				Type  string          `json:"type"`
				Input json.RawMessage `json:"input"`
			}
			_ = json.Unmarshal(b, &blk)
			if blk.Type == "tool_use" && (len(blk.Input) == 0 || blk.Input[0] != '{') {
				t.Fatalf("tool_use input is not an object: %s", out)
			}
		}
		if m.Usage["input_tokens"] < 0 {
			t.Fatalf("negative input tokens: %s", out)
		}
	})
}

func seedsPaths(f *testing.F, pattern string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s", pattern)
	}
	return files
}

// FuzzStream feeds a stream whole and in chunks cut where the fuzzer
// picks: outputs and usage must match, and the output must follow
// Anthropic's event order and end with message_stop or an error.
func FuzzStream(f *testing.F) {
	for _, s := range seeds(f, "stream/*.in.sse") {
		f.Add(s, []byte{1, 7, 3})
	}
	f.Fuzz(func(t *testing.T, in, cutSizes []byte) {
		whole, wu := runStream(t, in)
		var cuts []int
		for i, pos := 0, 0; pos < len(in); i++ {
			n := 1
			if len(cutSizes) > 0 {
				n = int(cutSizes[i%len(cutSizes)]) + 1
			}
			pos += n
			if pos < len(in) {
				cuts = append(cuts, pos)
			}
		}
		split, su := runStream(t, in, cuts...)
		if !bytes.Equal(split, whole) {
			t.Fatalf("split output differs\n--- split\n%s\n--- whole\n%s", split, whole)
		}
		if su != wu {
			t.Fatalf("usage differs: %+v vs %+v", su, wu)
		}
		if err := validateEvents(whole); err != nil {
			t.Fatalf("%v\n%s", err, whole)
		}
	})
}

// FuzzErrorBody: any status and body give Anthropic's error shape.
func FuzzErrorBody(f *testing.F) {
	for _, p := range seedsPaths(f, "response/err_*.in.json") {
		c := readResponseCase(f, p)
		f.Add(c.Status, c.body)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 400 {
			status = 400 + (status & 0xff)
		}
		checkErrorBody(t, ErrorBody(status, body))
	})
}
