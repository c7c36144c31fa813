// Package benchtr holds the loops every translator benchmark runs, so that
// the benchmarks of each provider (translated and native) differ only in
// their inputs and measure the same thing.
package benchtr

import (
	"os"
	"testing"

	"github.com/weir-ai/weir/extproc/provider"
)

// Read returns a testdata file, failing the benchmark if it cannot.
func Read(b *testing.B, path string) []byte {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// Request measures tr.TranslateRequest(req).
func Request(b *testing.B, tr provider.Translator, req *provider.Request) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(req.Body)))
	for b.Loop() {
		if _, err := tr.TranslateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

// Response measures tr.TranslateResponse(resp).
func Response(b *testing.B, tr provider.Translator, resp *provider.Response) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(resp.Body)))
	for b.Loop() {
		if _, _, err := tr.TranslateResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// Stream measures a whole stream, in, translated by a new tr.NewStream(info)
// in chunks of chunk bytes, as an upstream delivers it.
func Stream(b *testing.B, tr provider.Translator, info *provider.StreamInfo, in []byte, chunk int) {
	b.Helper()
	dst := make([]byte, 0, 8<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s := tr.NewStream(info)
		dst = dst[:0]
		rest := in
		var err error
		for len(rest) > chunk {
			if dst, err = s.Translate(dst, rest[:chunk], false); err != nil {
				b.Fatal(err)
			}
			rest = rest[chunk:]
		}
		if _, err = s.Translate(dst, rest, true); err != nil {
			b.Fatal(err)
		}
	}
}
