package tokens

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// pdfWithPages is a minimal PDF with n page objects under a /Pages root
// (written "/Type /Page" or, with tight, "/Type/Page"), padded with an
// uncompressed stream to about size bytes.
func pdfWithPages(n int, tight bool, size int) string {
	var b strings.Builder
	b.WriteString("%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	fmt.Fprintf(&b, "2 0 obj\n<< /Type /Pages /Kids [] /Count %d >>\nendobj\n", n)
	typ := "/Type /Page"
	if tight {
		typ = "/Type/Page"
	}
	for i := range n {
		fmt.Fprintf(&b, "%d 0 obj\n<<%s/Parent 2 0 R/MediaBox[0 0 612 792]>>\nendobj\n", 3+i, typ)
	}
	if pad := size - b.Len() - 64; pad > 0 {
		fmt.Fprintf(&b, "99 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n", pad, strings.Repeat("x", pad))
	}
	b.WriteString("trailer\n<< /Root 1 0 R >>\n%%EOF\n")
	return b.String()
}

// pdfObjStm is a PDF 1.5 file whose pages are in a compressed object
// stream: only the object stream's dictionary and, with root, the page
// tree's root are visible.
func pdfObjStm(count int, root bool) string {
	var b strings.Builder
	b.WriteString("%PDF-1.5\n")
	if root {
		fmt.Fprintf(&b, "2 0 obj\n<</Kids[5 0 R 6 0 R]/Count %d/Type/Pages>>\nendobj\n", count)
	}
	b.WriteString("4 0 obj\n<< /Type /ObjStm /N 7 /First 40 /Filter /FlateDecode /Length 8 >>\nstream\n\x78\x9c\x01\x02\xfe\xff\x00\x01\nendstream\nendobj\n%%EOF\n")
	return b.String()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPDFPages(t *testing.T) {
	tests := []struct {
		name  string
		pdf   string
		pages int
		ok    bool
	}{
		{"3 pages", pdfWithPages(3, false, 0), 3, true},
		{"tight /Type/Page", pdfWithPages(7, true, 0), 7, true},
		{"one page", pdfWithPages(1, false, 0), 1, true},
		{"padded to 200 KB", pdfWithPages(10, false, 200_000), 10, true},
		{"pages behind an object stream, root /Count visible", pdfObjStm(42, true), 42, true},
		{"object stream without a visible root", pdfObjStm(0, false), 0, false},
		{"/Pages /Count only", "%PDF-1.7\n<< /Type /Pages /Count 12 >>\n", 12, true},
		{"/Count before /Type", "%PDF-1.7\n<</Count 5/Kids[]/Type/Pages>>\n", 5, true},
		{"more page objects than /Count (incremental update)", "%PDF-1.7\n<</Type/Pages/Count 1>><</Type/Page>><</Type/Page>>", 2, true},
		{"outline /Count is not a page tree", "%PDF-1.7\n<</Type/Outlines/Count 9>>", 0, false},
		{"/PageLabel is not a page", "%PDF-1.7\n<</Type /PageLabel>>", 0, false},
		{"/Type with white space and a comment-free newline", "%PDF-1.7\n<</Type\r\n  /Page>>", 1, true},
		{"no pages", "%PDF-1.7\n<< /Type /Catalog >>\n", 0, false},
		{"not a PDF", "GIF89a /Type /Page /Type /Page", 0, false},
		{"too many pages", pdfWithPages(MaxPDFPages+1, true, 0), 0, false},
		{"/Count above the cap", "%PDF-1.7\n<</Type/Pages/Count 99999999999999999999>>", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		pages, ok := pdfPages(b64(tt.pdf))
		if pages != tt.pages || ok != tt.ok {
			t.Errorf("%s: %d, %t; want %d, %t", tt.name, pages, ok, tt.pages, tt.ok)
		}
	}
	for _, bad := range []string{
		"!!!!" + b64(pdfWithPages(2, false, 0)),
		b64(pdfWithPages(2, false, 0))[:30] + "====" + b64("/Type /Page"),
		strings.Repeat("A", 5000),
		"JVBERi0",
		// Padding at the end of the first 4,096-character chunk, then more.
		b64(pdfWithPages(1, false, 0)+strings.Repeat(" ", 3070-len(pdfWithPages(1, false, 0)))) + b64("<</Type /Page>>"),
	} {
		if pages, ok := pdfPages(bad); ok {
			t.Errorf("%.40q...: %d pages, want not counted", bad, pages)
		}
	}
}

// TestPDFScanSplit: a token cut anywhere between two chunks is read
// whole, so the count does not depend on where the chunks fall.
func TestPDFScanSplit(t *testing.T) {
	doc := []byte("%PDF-1.7\n<</Type /Page>> <</Type/Page/X 1>> <</Kids[]/Count 17 /Type  /Pages>> <</Type /Pages2>> <</Type /Pagex>>")
	var whole pdfScan
	whole.scan(doc)
	whole.end()
	if whole.pages != 2 || whole.count != 17 || !whole.sawPages {
		t.Fatalf("whole: %d pages, count %d, sawPages %t", whole.pages, whole.count, whole.sawPages)
	}
	for i := range len(doc) + 1 {
		var p pdfScan
		p.scan(doc[:i])
		p.scan(doc[i:])
		p.end()
		if p.pages != whole.pages || p.count != whole.count || p.sawPages != whole.sawPages {
			t.Errorf("split at %d (%q|%q): %d pages, count %d, sawPages %t", i, doc[max(0, i-5):i], doc[i:min(len(doc), i+5)], p.pages, p.count, p.sawPages)
		}
	}
	// Through the chunked decoder: a page object across the first
	// 3,072-byte decoded chunk's end, at each offset.
	for off := 3072 - 12; off <= 3072; off++ {
		pre := "%PDF-1.7\n"
		doc := pre + strings.Repeat(" ", off-len(pre)) + "<</Type /Page>>\n"
		if pages, ok := pdfPages(b64(doc)); pages != 1 || !ok {
			t.Errorf("page object at %d: %d, %t", off, pages, ok)
		}
	}
}

func TestPDFPageTokens(t *testing.T) {
	tests := []struct {
		provider, model string
		want            int
	}{
		{"anthropic", "claude-sonnet-4", 3000 + 1600},
		{"bedrock", "anthropic.claude-3-5-sonnet", 3000 + 1600},
		{"vertex", "claude-opus-4", 3000 + 1600},
		{"openai", "gpt-4o", 3000 + 85 + 170*8},
		{"azure", "gpt-4o-mini", 3000 + 2833 + 5667*8},
		{"", "", 3000 + 85 + 170*8},
		{"gemini", "gemini-2.5-flash", 1120},
		{"vertex", "gemini-2.5-pro", 1120},
	}
	for _, tt := range tests {
		if got := PDFPageTokens(tt.provider, tt.model); got != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.provider, tt.model, got, tt.want)
		}
	}
}

func TestMediaCountPDF(t *testing.T) {
	pdf10 := b64(pdfWithPages(10, false, 300_000)) // 400 KB of base64
	garbage := b64("%PDF-1.7 but nothing " + strings.Repeat("z", 3000))
	text := b64(strings.Repeat("plain text file ", 200))
	shapes := []struct {
		name, body string
		dataURL    bool // the replaced string is a data: URL, else bare base64
	}{
		{"chat file", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"summarise"},{"type":"file","file":{"filename":"a.pdf","file_data":"DATA"}}]}]}`, true},
		{"responses input_file", `{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"summarise"},{"type":"input_file","filename":"a.pdf","file_data":"DATA"}]}]}`, true},
		{"anthropic document", `{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"DATA"}}]}]}`, false},
	}
	files := []struct {
		name, b64 string
		pages     int // 0: keeps its bytes
	}{
		{"10-page PDF", pdf10, 10},
		{"object-stream PDF with its /Count", b64(pdfObjStm(4, true)), 4},
		{"PDF without pages", garbage, 0},
		{"text file", text, 0},
	}
	for _, sh := range shapes {
		for _, f := range files {
			for _, be := range []struct{ provider, model string }{{"openai", "gpt-4o"}, {"anthropic", "claude-sonnet-4"}, {"gemini", "gemini-2.5-flash"}} {
				data := f.b64
				if sh.dataURL {
					data = "data:application/pdf;base64," + data
				}
				body := strings.Replace(sh.body, "DATA", data, 1)
				want := len(body) + Priming
				if f.pages > 0 {
					want += f.pages*PDFPageTokens(be.provider, be.model) - len(data) - 2
				}
				if got := (Media{}).CountFor([]byte(body), be.provider, be.model); got != want {
					t.Errorf("%s, %s, %s: %d, want %d", sh.name, f.name, be.provider, got, want)
				}
			}
		}
	}
	// A 2 MB, 10-page PDF fits a 200k TPM limit on every family.
	big := `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,` + b64(pdfWithPages(10, true, 1_500_000)) + `"}}]}]}`
	for _, p := range []string{"openai", "anthropic", "gemini"} {
		if n := (Media{}).CountFor([]byte(big), p, "gpt-4o"); n > 50_000 {
			t.Errorf("%s: a 2 MB 10-page PDF estimated at %d", p, n)
		}
	}
	// A file by id or URL keeps its (few) bytes.
	for _, b := range []string{
		`{"input":[{"content":[{"type":"input_file","file_id":"file-1"}]}]}`,
		`{"input":[{"content":[{"type":"input_file","file_url":"https://x.test/a.pdf"}]}]}`,
		`{"input":[{"content":[{"type":"input_file","file_data":"https://x.test/a.pdf"}]}]}`,
		`{"messages":[{"content":[{"type":"document","source":{"type":"url","url":"https://x.test/a.pdf"}}]}]}`,
		`{"messages":[{"content":[{"type":"file","file":{"file_data":7}}]}]}`,
	} {
		if got := (Media{}).CountFor([]byte(b), "openai", "gpt-4o"); got != len(b)+Priming {
			t.Errorf("%s: %d, want its bytes %d", b, got, len(b)+Priming)
		}
	}
}

// FuzzPDFPages: nothing panics, and a count is within 1..MaxPDFPages.
func FuzzPDFPages(f *testing.F) {
	f.Add(b64(pdfWithPages(3, false, 0)))
	f.Add(b64(pdfObjStm(5, true)))
	f.Add(b64("%PDF-1.7 /Type/Page/Type /Pages /Count 4"))
	f.Add("JVBERi0xLjcK")
	f.Fuzz(func(t *testing.T, s string) {
		pages, ok := pdfPages(s)
		if ok && (pages < 1 || pages > MaxPDFPages) || !ok && pages != 0 {
			t.Fatalf("%d pages, ok %t", pages, ok)
		}
		if d, err := base64.StdEncoding.DecodeString(s); err == nil && !strings.HasPrefix(string(d), "%PDF-") && ok {
			t.Fatalf("counted %d pages of a file that is not a PDF", pages)
		}
	})
}
