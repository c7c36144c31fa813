package tokens

import (
	"encoding/base64"

	"github.com/tidwall/gjson"
)

// MaxPDFPages is the most pages a PDF is estimated by; a larger count (or
// a file claiming one) keeps its bytes as tokens.
const MaxPDFPages = 1000

// pdfTextPageTokens bounds the text extracted from one PDF page. It is
// the top of Anthropic's "1,500-3,000 tokens per page" for text
// (https://docs.anthropic.com/en/docs/build-with-claude/pdf-support, from
// memory): a typical figure, not a bound (a page of 6 pt type holds
// more), which the settle corrects. OpenAI documents no per-page figure
// (https://developers.openai.com/api/docs/guides/file-inputs: "the API
// extracts both text and page images and sends both to the model"), so
// the same figure is used there.
const pdfTextPageTokens = 3000

// PDFPageTokens is the estimate of one PDF page's input tokens on a
// provider and model: the page's text plus an image of the page, the
// image at the family's largest image cost ([ImageTokens] of an unknown
// size), since neither the page's size nor its rendering is known.
//
//   - Anthropic family: 3,000 text + 1,600 image = 4,600 (Anthropic
//     documents each page as extracted text plus an image of the page).
//   - OpenAI and everything else: 3,000 text + the model's largest image
//     cost (4,445 on GPT-4o; 48,169 on GPT-4o-mini, whose image tokens
//     are billed 33 times over).
//   - Gemini: each page is one image, no text tokens
//     (https://ai.google.dev/gemini-api/docs/document-processing: 258
//     tokens per page on Gemini 2; Gemini 3 bills pages by
//     media_resolution, 560 by default for PDFs and 1,120 at high,
//     https://ai.google.dev/gemini-api/docs/media-resolution, from
//     memory). 1,120, the largest, is counted, as for an image of unknown
//     size; the settle corrects it.
func PDFPageTokens(provider, model string) int {
	img := ImageTokens(provider, model, "", 0, 0)
	if mediaFamily(provider, model) == familyGemini {
		return img
	}
	return pdfTextPageTokens + img
}

// filePart returns the change to the byte count for a file's data (raw:
// a gjson string, the data: URL or bare base64): minus its bytes, plus
// its pages' tokens, when it is a base64 PDF whose pages can be counted.
// Anything else (another file type, an unreadable or a too-large PDF, a
// URL) keeps its bytes: 0.
func filePart(data gjson.Result, provider, model string) int {
	if data.Type != gjson.String {
		return 0
	}
	s, ok := base64Payload(data.Raw)
	if !ok {
		return 0
	}
	pages, ok := pdfPages(s)
	if !ok {
		return 0
	}
	return pages*PDFPageTokens(provider, model) - len(data.Raw)
}

// pdfPages counts the pages of a base64 PDF without allocating: it
// decodes s in fixed chunks and scans the bytes for page objects
// ("/Type /Page") and the page tree's "/Count N" (its "/Type /Pages"
// nodes). ok is false when s is not a base64 PDF, when no page count is
// visible, or when it exceeds [MaxPDFPages].
//
// PDF 1.5 files may keep their objects (pages and the page tree) in
// compressed object streams, where no scan sees them: a file with an
// object stream ("/Type /ObjStm") is counted only when its page tree's
// /Count is visible. The count is the larger of the page objects seen
// and the largest /Count (the root's is the largest of the tree's;
// outlines' counts only make it larger), so old object versions kept by
// incremental updates, and "/Type /Page" in uncompressed content, can
// only raise it.
func pdfPages(s string) (pages int, ok bool) {
	var src [4096]byte
	var dst [3072]byte
	var sc pdfScan
	for first := true; len(s) > 0; first = false {
		n := min(len(s), len(src))
		copy(src[:], s[:n])
		s = s[n:]
		k, err := base64.StdEncoding.Decode(dst[:], src[:n])
		if err != nil || len(s) > 0 && k != len(dst) { // padding mid-way
			return 0, false
		}
		if first && (k < 5 || string(dst[:5]) != "%PDF-") {
			return 0, false
		}
		sc.scan(dst[:k])
		if sc.pages > MaxPDFPages {
			return 0, false
		}
	}
	sc.end()
	pages = sc.pages
	if sc.sawPages {
		pages = max(pages, sc.count)
	} else if sc.objStm {
		return 0, false
	}
	if pages <= 0 || pages > MaxPDFPages {
		return 0, false
	}
	return pages, true
}

// pdfScan is a PDF lexer reduced to what the page count needs: names
// and the integers after /Count. It keeps its state between chunks, so a
// token split across two chunks is read whole.
type pdfScan struct {
	name     [8]byte // the name being read, without its slash
	nlen     int     // its length so far; -1 outside a name
	num      int     // the integer being read; -1 outside one
	prev     int     // the previous token: tokOther, tokType or tokCount
	pages    int     // "/Type /Page" seen
	count    int     // the largest "/Count N"
	sawPages bool    // "/Type /Pages" seen
	objStm   bool    // "/Type /ObjStm" seen
	started  bool
}

const (
	tokOther = iota
	tokType
	tokCount
)

func (p *pdfScan) scan(b []byte) {
	if !p.started {
		p.nlen, p.num, p.started = -1, -1, true
	}
	for _, c := range b {
		if p.nlen >= 0 {
			if pdfRegular(c) {
				if p.nlen < len(p.name) {
					p.name[p.nlen] = c
				}
				p.nlen++
				continue
			}
			p.endName()
		} else if p.num >= 0 {
			if c >= '0' && c <= '9' {
				p.num = min(p.num*10+int(c-'0'), 1<<30)
				continue
			}
			p.endNum()
		}
		switch {
		case c == '/':
			p.nlen = 0
		case c >= '0' && c <= '9':
			p.num = int(c - '0')
		case pdfSpace(c):
			// tokens keep their predecessor across white space
		default:
			p.prev = tokOther
		}
	}
}

// end finishes a token cut by the end of the data.
func (p *pdfScan) end() {
	if p.nlen >= 0 {
		p.endName()
	} else if p.num >= 0 {
		p.endNum()
	}
}

func (p *pdfScan) endName() {
	name := ""
	if p.nlen <= len(p.name) {
		name = string(p.name[:p.nlen]) // no allocation: compared only
	}
	if p.prev == tokType {
		switch name {
		case "Page":
			p.pages++
		case "Pages":
			p.sawPages = true
		case "ObjStm":
			p.objStm = true
		}
	}
	switch name {
	case "Type":
		p.prev = tokType
	case "Count":
		p.prev = tokCount
	default:
		p.prev = tokOther
	}
	p.nlen = -1
}

func (p *pdfScan) endNum() {
	if p.prev == tokCount {
		p.count = max(p.count, p.num)
	}
	p.prev = tokOther
	p.num = -1
}

// pdfSpace reports PDF white space (ISO 32000-1, 7.2.2).
func pdfSpace(c byte) bool {
	return c == 0 || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' '
}

// pdfRegular reports a regular character: neither white space nor a
// delimiter.
func pdfRegular(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return false
	}
	return !pdfSpace(c)
}
