package e2e

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// tenPagePDF is a base64 PDF of about n bytes with ten page objects: a
// minimal page tree padded with an uncompressed stream.
func tenPagePDF(n int) string {
	var b strings.Builder
	b.WriteString("%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 10 >>\nendobj\n")
	for i := range 10 {
		fmt.Fprintf(&b, "%d 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n", 3+i)
	}
	pad := n*3/4 - b.Len() - 100
	fmt.Fprintf(&b, "99 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n%%%%EOF\n", pad, strings.Repeat("x", pad))
	return base64.StdEncoding.EncodeToString([]byte(b.String()))
}

// TestFilesUnderTPM: a 2 MB base64 PDF of 10 pages under a 200k TPM
// limit is admitted (estimated at 10 pages of text and page image, about
// 44,000 tokens on GPT-4o, not 2,000,000) and the key is charged the
// provider's actual usage. gpt-4o, not gpt-4o-mini: the latter's page
// images are billed at 5,667 tokens a tile, 48,169 a page at most.
func TestFilesUnderTPM(t *testing.T) {
	pdf := tenPagePDF(2 << 20)
	chat := `{"model":"gpt-4o","max_tokens":16,"messages":[{"role":"user","content":[{"type":"text","text":"summarise"},` +
		`{"type":"file","file":{"filename":"report.pdf","file_data":"data:application/pdf;base64,` + pdf + `"}}]}]}`
	// The Anthropic ingress turns the document block into a chat file part.
	messages := `{"model":"gpt-4o","max_tokens":16,"messages":[{"role":"user","content":[{"type":"text","text":"summarise"},` +
		`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + pdf + `"}}]}]}`
	admittedUnderTPM(t, chat, messages)
}
