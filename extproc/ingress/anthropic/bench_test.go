package anthropic

import (
	"os"
	"testing"
)

func readBench(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkRequest(b *testing.B) {
	tr := NewAdapter(nil)
	body := readBench(b, "testdata/request/tools_roundtrip.in.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.Canonical(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResponse(b *testing.B) {
	tr := NewAdapter(nil)
	c := readResponseCase(b, "testdata/response/tool_calls.in.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(c.body)))
	for b.Loop() {
		if _, err := tr.Response(c.body, c.Model); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkErrorBody(b *testing.B) {
	c := readResponseCase(b, "testdata/response/err_429.in.json")
	b.ReportAllocs()
	for b.Loop() {
		_ = ErrorBody(c.Status, c.body)
	}
}

// BenchmarkStream translates a whole tool-call stream fed in 64-byte chunks.
func BenchmarkStream(b *testing.B) {
	tr := NewAdapter(nil)
	in := readBench(b, "testdata/stream/tool_calls.in.sse")
	dst := make([]byte, 0, 8<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s := tr.NewStream("my-claude", "req-1")
		dst = dst[:0]
		rest := in
		var err error
		for len(rest) > 64 {
			if dst, err = s.Translate(dst, rest[:64], false); err != nil {
				b.Fatal(err)
			}
			rest = rest[64:]
		}
		if dst, err = s.Translate(dst, rest, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCountTokens(b *testing.B) {
	tr := NewAdapter(nil)
	body := readBench(b, "testdata/count/system_tools_image.in.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.CountTokens(body); err != nil {
			b.Fatal(err)
		}
	}
}
