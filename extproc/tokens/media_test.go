package tokens

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"strings"
	"testing"
)

func encoded(t testing.TB, format string, w, h int) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, img)
	case "jpeg":
		err = jpeg.Encode(&b, img, nil)
	case "gif":
		err = gif.Encode(&b, img, nil)
	case "webp": // a VP8X header: stdlib has no WebP encoder
		b.WriteString("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00")
		b.Write([]byte{byte(w - 1), byte((w - 1) >> 8), 0, byte(h - 1), byte((h - 1) >> 8), 0})
		b.WriteString("ICCP\x00\x00\x00\x00") // the next chunk
	}
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// padded makes a base64 payload about n bytes long whose header is that
// of a w×h image: the estimate must not depend on the payload's size.
func padded(t testing.TB, format string, w, h, n int) string {
	s := encoded(t, format, w, h)
	s = strings.TrimRight(s, "=")
	s = s[:len(s)/4*4]
	return s + strings.Repeat("A", max(0, n-len(s)))
}

func TestImageSize(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		w, h int
	}{
		{"png", `"data:image/png;base64,` + encoded(t, "png", 1024, 768) + `"`, 1024, 768},
		{"jpeg", `"data:image/jpeg;base64,` + encoded(t, "jpeg", 300, 2000) + `"`, 300, 2000},
		{"gif", `"data:image/gif;base64,` + encoded(t, "gif", 17, 33) + `"`, 17, 33},
		{"webp vp8x", `"data:image/webp;base64,` + encoded(t, "webp", 4000, 3000) + `"`, 4000, 3000},
		{"bare base64 (anthropic source.data)", `"` + encoded(t, "png", 5, 6) + `"`, 5, 6},
		{"http url", `"https://example.com/cat.png"`, 0, 0},
		{"not base64", `"data:image/png;base64,!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"`, 0, 0},
		{"truncated png", `"data:image/png;base64,` + encoded(t, "png", 9, 9)[:20] + `"`, 0, 0},
		{"no base64 marker", `"data:image/png,rawbytes"`, 0, 0},
		{"empty", `""`, 0, 0},
		{"not a string", `12`, 0, 0},
	}
	for _, tt := range tests {
		if w, h := imageSize(tt.raw); w != tt.w || h != tt.h {
			t.Errorf("%s: %dx%d, want %dx%d", tt.name, w, h, tt.w, tt.h)
		}
	}
}

func TestImageTokens(t *testing.T) {
	tests := []struct {
		provider, model, detail string
		w, h                    int
		want                    int
	}{
		{"openai", "gpt-4o", "low", 4000, 4000, 85},
		{"openai", "gpt-4o", "high", 1024, 1024, 85 + 170*4}, // 768x768: 2x2 tiles
		{"openai", "gpt-4o", "auto", 2048, 4096, 85 + 170*6}, // 1024x2048 -> 768x1536: 2x3
		{"openai", "gpt-4o", "", 0, 0, 85 + 170*8},           // unknown: 768x2048 is the most
		{"openai", "gpt-4o", "high", 100, 100, 85 + 170},
		{"azure", "gpt-4o-mini", "high", 0, 0, 2833 + 5667*8},
		{"openai", "o3", "low", 0, 0, 75},
		{"openai", "gpt-5", "high", 512, 512, 70 + 140},
		{"openai", "gpt-4.1-mini", "low", 0, 0, (1536*162 + 99) / 100},
		{"openai", "gpt-4.1-nano", "", 64, 64, (4*246 + 99) / 100},
		{"anthropic", "claude-sonnet-4", "", 1092, 1092, 1590},
		{"anthropic", "claude-sonnet-4", "", 4000, 4000, 1600},
		{"anthropic", "claude-sonnet-4", "", 0, 0, 1600},
		{"bedrock", "anthropic.claude-3-haiku", "", 0, 0, 1600},
		{"gemini", "gemini-2.5-flash", "", 384, 300, 258},
		{"gemini", "gemini-2.5-flash", "", 1600, 900, 258 * 3 * 2},
		{"vertex", "gemini-2.5-pro", "", 0, 0, 1120},
		{"openai", "llama-3.2-vision", "", 0, 0, 85 + 170*8},
	}
	for _, tt := range tests {
		if got := ImageTokens(tt.provider, tt.model, tt.detail, tt.w, tt.h); got != tt.want {
			t.Errorf("%s %s %s %dx%d: %d, want %d", tt.provider, tt.model, tt.detail, tt.w, tt.h, got, tt.want)
		}
	}
}

func TestMediaCount(t *testing.T) {
	big := padded(t, "png", 1024, 1024, 300_000) // 300 KB of base64
	dataURL := "data:image/png;base64," + big
	const text = `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},PART]}]}`
	body := func(part string) string { return strings.Replace(text, "PART", part, 1) }
	tests := []struct {
		name, provider, model, body string
		imageCost                   int // the image's tokens
		replaced                    string
	}{
		{"chat data url", "openai", "gpt-4o", body(`{"type":"image_url","image_url":{"url":"` + dataURL + `"}}`), 85 + 170*4, dataURL},
		{"chat data url low", "openai", "gpt-4o", body(`{"type":"image_url","image_url":{"url":"` + dataURL + `","detail":"low"}}`), 85, dataURL},
		{"chat http url", "openai", "gpt-4o", body(`{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}`), 85 + 170*8, "https://x.test/a.png"},
		{"chat url as a string", "openai", "gpt-4o", body(`{"type":"image_url","image_url":"https://x.test/a.png"}`), 85 + 170*8, "https://x.test/a.png"},
		{"anthropic backend", "anthropic", "claude-sonnet-4", body(`{"type":"image_url","image_url":{"url":"` + dataURL + `"}}`), 1399, dataURL},
		{"gemini backend", "gemini", "gemini-2.5-flash", body(`{"type":"image_url","image_url":{"url":"` + dataURL + `"}}`), 258 * 4, dataURL},
		{"responses input_image", "openai", "gpt-4o",
			`{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"` + dataURL + `"}]}]}`, 85 + 170*4, dataURL},
		{"responses input_image by file_id", "openai", "gpt-4o",
			`{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1","detail":"low"}]}]}`, 85, ""},
		{"anthropic block", "anthropic", "claude-sonnet-4",
			`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + big + `"}}]}]}`, 1399, big},
		{"file part that is not a PDF keeps its bytes", "openai", "gpt-4o",
			body(`{"type":"file","file":{"file_data":"data:application/pdf;base64,` + big + `"}}`), 0, ""},
		{"text only", "openai", "gpt-4o", `{"messages":[{"role":"user","content":"hello"}]}`, 0, ""},
	}
	for _, tt := range tests {
		got := Media{}.CountFor([]byte(tt.body), tt.provider, tt.model)
		replaced := 0
		if tt.replaced != "" {
			replaced = len(tt.replaced) + 2 // with its quotes
		}
		want := len(tt.body) - replaced + tt.imageCost + Priming
		if got != want {
			t.Errorf("%s: %d, want %d", tt.name, got, want)
		}
	}
	// Three 300 KB images fit a 200k TPM limit with room to spare.
	three := `{"messages":[{"role":"user","content":[` + strings.Repeat(`{"type":"image_url","image_url":{"url":"`+dataURL+`"}},`, 2) +
		`{"type":"image_url","image_url":{"url":"` + dataURL + `"}}]}]}`
	if n, _ := (Media{}).Count([]byte(three)); n > 5000 {
		t.Errorf("three 300 KB images estimated at %d tokens", n)
	}
}

func TestMediaCountMalformed(t *testing.T) {
	for _, b := range []string{
		``, `{`, `[]`, `"x"`, `{"messages":3}`, `{"messages":[3,"x",null]}`,
		`{"messages":[{"content":[{"type":"image_url"}]}]}`,
		`{"messages":[{"content":[{"type":"image_url","image_url":{"url":5}}]}]}`,
		`{"messages":[{"content":[{"type":"image_url","image_url":{"url":"data:;base64,"}}]}]}`,
		`{"messages":[{"content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/"}}]}]}`,
		`{"messages":[{"content":[{"type":"image","source":{}}]}]}`,
		`{"input":[{"content":[{"type":"input_image","image_url":null}]}]}`,
		`{"messages":[{"content":[{"type":"image_url","image_url":{"url":"data:x;base64,` + strings.Repeat("/", 400) + `"}}]}]}`,
	} {
		n := Media{}.CountFor([]byte(b), "openai", "gpt-4o")
		if n < Priming {
			t.Errorf("%q: %d", b, n)
		}
	}
}

// FuzzMedia: the estimate is never below the bytes of what is not an
// image or a PDF (its text) and never negative, and nothing panics.
func FuzzMedia(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+encoded(f, "png", 30, 40)+`"}}]}]}`), "anthropic")
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,`+encoded(f, "jpeg", 30, 40)+`"}}]}]}`), "openai")
	f.Add([]byte(`{"input":[{"content":[{"type":"input_image","image_url":"https://a/b"}]}]}`), "gemini")
	f.Add([]byte(`{"messages":[{"content":[{"type":"image","source":{"data":"R0lGODlhAQABAAAAACw="}}]}]}`), "vertex")
	f.Add([]byte(`{"messages":[{"content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,`+b64("%PDF-1.7 /Type /Page")+`"}}]}]}`), "openai")
	f.Add([]byte(`{"input":[{"content":[{"type":"input_file","file_data":"`+b64("%PDF-1.7 /Type /Pages /Count 3")+`"}]}]}`), "anthropic")
	f.Fuzz(func(t *testing.T, body []byte, provider string) {
		n := Media{}.CountFor(body, provider, "gpt-4o")
		if n < 0 {
			t.Fatalf("negative estimate %d", n)
		}
		// Without an image part or a PDF ("%PDF-" in base64 starts
		// "JVBERi") the estimate is the body's bytes.
		ub, _ := UpperBound{BytesPerToken: 1}.Count(body)
		if !bytes.Contains(body, []byte("image")) && !bytes.Contains(body, []byte("JVBERi")) && n != ub {
			t.Fatalf("no image, estimate %d, want the bytes bound %d", n, ub)
		}
		// Only string values are ever replaced: the bytes outside every
		// string (structure, numbers, keywords) still count as tokens.
		if s := outsideStrings(body); n < s+Priming {
			t.Fatalf("estimate %d below the %d bytes outside strings", n, s)
		}
	})
}

// outsideStrings counts the bytes of a JSON text outside string literals
// (quotes included in the strings).
func outsideStrings(b []byte) int {
	n, in, esc := 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case !in:
			n++
		}
	}
	return n
}

// TestMediaAllocations: estimating never allocates in proportion to an
// image or a PDF: three parts of about 1 MB allocate no more than a few KB
// per count, and the estimate is the parts' documented cost.
func TestMediaAllocations(t *testing.T) {
	img := `{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,` + padded(t, "jpeg", 640, 480, 1<<20) + `"}}`
	pdf := `{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,` + b64(pdfWithPages(20, false, 750_000)) + `"}}`
	pdfPages := 3 * 20 * PDFPageTokens("openai", "gpt-4o")
	tests := []struct {
		name     string
		part     string
		min, max int
	}{
		{"three 640x480 images", img, 1, 10_000},
		{"three 20-page PDFs", pdf, pdfPages, pdfPages + 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"messages":[{"role":"user","content":[` + tt.part + "," + tt.part + "," + tt.part + `]}]}`)
			const runs = 10
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				Media{}.CountFor(body, "openai", "gpt-4o")
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
				t.Errorf("%d bytes allocated per count of a %d-byte body", per, len(body))
			}
			if n := (Media{}).CountFor(body, "openai", "gpt-4o"); n < tt.min || n > tt.max {
				t.Errorf("estimate %d, want %d..%d", n, tt.min, tt.max)
			}
		})
	}
}
