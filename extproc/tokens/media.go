package tokens

import (
	"encoding/base64"
	"strings"

	"github.com/tidwall/gjson"
)

// Media is the reservation's estimator: [UpperBound] with BytesPerToken 1
// (every byte of the body is a token, a strict bound for text), except
// that each image part counts its provider's documented token cost
// instead of the bytes of its data: URL or link. A 300 KB base64 image
// is about 1,100 tokens on GPT-4o, not 300,000.
//
// It walks the body with gjson (no unmarshalling) and allocates nothing
// in proportion to an image: an image's size is read from the first
// bytes of its base64 data (PNG, GIF, JPEG and WebP headers); without it
// (an http URL, another format) the model family's largest cost is
// counted. Parts read: chat messages[].content[] of type image_url (an
// object with url and detail, or a bare URL string), and Responses
// input[].content[] of type input_image. The Anthropic ingress's body is
// already OpenAI-shaped when it is estimated; Anthropic's own image
// blocks (source.data) are read too.
//
// Files: a base64 PDF (chat "file" parts' file.file_data, Responses
// "input_file" parts' file_data, Anthropic "document" blocks'
// source.data) counts its pages times [PDFPageTokens] instead of its
// bytes. The pages are counted by stream-decoding the base64 in fixed
// chunks and scanning for page objects and the page tree's /Count
// ([pdfPages]); a PDF whose pages cannot be counted (object streams
// hiding the page tree, more than [MaxPDFPages], a malformed file), any
// other file type, and a file by URL or id keep their bytes.
type Media struct{}

// Count implements [Estimator] for an unknown backend: images count the
// OpenAI tile rule's largest cost.
func (Media) Count(body []byte) (int, error) { return Media{}.CountFor(body, "", ""), nil }

// CountFor is [Media.Count] for the backend's provider ("openai",
// "anthropic", "gemini", "vertex", "bedrock", "azure", ...) and the
// model sent upstream, which select the image rule ([ImageTokens]).
func (Media) CountFor(body []byte, provider, model string) int {
	n := len(body) + Priming
	s := bytesToString(body)
	// Only a valid body is walked: the replaced ranges must be distinct
	// strings inside it, so the estimate stays at least the text's bytes.
	if !gjson.Valid(s) {
		return n
	}
	root := gjson.Parse(s)
	parts := func(content gjson.Result) {
		if !content.IsArray() {
			return
		}
		content.ForEach(func(_, p gjson.Result) bool {
			if p.IsObject() {
				n += mediaPart(p, provider, model)
			}
			return true
		})
	}
	for _, list := range [...]string{"messages", "input"} {
		if v := root.Get(list); v.IsArray() {
			v.ForEach(func(_, m gjson.Result) bool {
				if m.IsObject() {
					parts(m.Get("content"))
				}
				return true
			})
		}
	}
	return n
}

// ModelEstimator is an [Estimator] whose count depends on the backend.
type ModelEstimator interface {
	CountFor(body []byte, provider, model string) int
}

// mediaPart returns the change to the byte count for one content part:
// minus the bytes of an image's URL string, plus its token cost.
func mediaPart(p gjson.Result, provider, model string) int {
	var url, detail gjson.Result
	switch p.Get("type").Str {
	case "image_url": // chat: {"url": ..., "detail": ...} or a string
		iu := p.Get("image_url")
		if iu.Type == gjson.String {
			url = iu
		} else {
			url, detail = iu.Get("url"), iu.Get("detail")
		}
	case "input_image": // responses
		url, detail = p.Get("image_url"), p.Get("detail")
		if url.Type != gjson.String {
			// A file_id: no bytes to replace, but the image still costs.
			return ImageTokens(provider, model, p.Get("detail").Str, 0, 0)
		}
	case "file": // chat: {"file": {"file_data": ..., "filename": ...}}
		return filePart(p.Get("file.file_data"), provider, model)
	case "input_file": // responses
		return filePart(p.Get("file_data"), provider, model)
	case "document": // Anthropic's block
		return filePart(p.Get("source.data"), provider, model)
	case "image": // Anthropic's block
		src := p.Get("source")
		url = src.Get("data")
		if url.Type != gjson.String {
			url = src.Get("url")
		}
	default:
		return 0
	}
	if url.Type != gjson.String {
		return 0
	}
	w, h := imageSize(url.Raw)
	return ImageTokens(provider, model, detail.Str, w, h) - len(url.Raw)
}

// ImageTokens bounds the input tokens of one image of w×h pixels (0×0:
// unknown) on a provider and model. Each rule's source is cited; the
// figures marked "from memory" were not re-read when this was written.
//
//   - Anthropic (provider anthropic, or a claude model on bedrock or
//     vertex): tokens = w*h/750, and images are scaled down to about 1.15
//     megapixels, about 1,600 tokens, which bounds an unknown image.
//     https://docs.anthropic.com/en/docs/build-with-claude/vision
//     (from memory).
//   - Gemini (provider gemini, or vertex with another model): 258 tokens
//     for an image with both sides at most 384 px, else 258 per 768×768
//     tile. https://ai.google.dev/gemini-api/docs/tokens. An image of
//     unknown size counts 1,120, Gemini 3's media_resolution_high per
//     image (https://ai.google.dev/gemini-api/docs/media-resolution, from
//     memory); Gemini 2 tiles a very large image into more, which the
//     settle corrects.
//   - OpenAI and everything else (openai-compatible servers included):
//     https://platform.openai.com/docs/guides/images-vision#calculating-costs
//     (from memory). Tile models: detail low costs the base; high or
//     auto scales the image into 2048×2048, then its short side to 768,
//     and adds a per-tile cost for each 512 px tile, at most 2×4 tiles
//     (768×2048): base+8×tile is the bound for an unknown size (1,445 on
//     GPT-4o: 85 + 170 per tile; GPT-4o-mini bills 2,833 + 5,667 per
//     tile, o1/o3 75 + 150, GPT-5 70 + 140). Patch models (gpt-4.1-mini
//     and -nano, o4-mini, gpt-5-mini and -nano) count 32 px patches, at
//     most 1,536, times a multiplier (1.62 mini, 2.46 nano, 1.72
//     o4-mini), whatever the detail.
func ImageTokens(provider, model, detail string, w, h int) int {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	switch mediaFamily(provider, model) {
	case familyAnthropic:
		const most = 1600
		if w <= 0 || h <= 0 || w > 1<<15 || h > 1<<15 {
			return most
		}
		return min((w*h+749)/750, most)
	case familyGemini:
		if w <= 0 || h <= 0 || w > 1<<16 || h > 1<<16 {
			return 1120
		}
		if w <= 384 && h <= 384 {
			return 258
		}
		return 258 * ((w + 767) / 768) * ((h + 767) / 768)
	}
	if mult := patchMultiplier(model); mult > 0 {
		patches := 1536
		if w > 0 && h > 0 && w <= 1<<16 && h <= 1<<16 {
			patches = min(((w+31)/32)*((h+31)/32), 1536)
		}
		return (patches*mult + 99) / 100
	}
	base, tile := tileCost(model)
	if detail == "low" {
		return base
	}
	tiles := 8
	if w > 0 && h > 0 && w <= 1<<16 && h <= 1<<16 {
		fw, fh := float64(w), float64(h)
		if fw > 2048 || fh > 2048 {
			s := 2048 / max(fw, fh)
			fw, fh = fw*s, fh*s
		}
		if short := min(fw, fh); short > 768 {
			s := 768 / short
			fw, fh = fw*s, fh*s
		}
		tiles = min(((int(fw)+511)/512)*((int(fh)+511)/512), 8)
		tiles = max(tiles, 1)
	}
	return base + tile*tiles
}

const (
	familyOpenAI = iota // and everything else
	familyAnthropic
	familyGemini
)

// mediaFamily is the family whose media rules a provider and model (its
// last path element) follow: a claude model on bedrock or vertex is
// Anthropic's, another vertex model Gemini's.
func mediaFamily(provider, model string) int {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	claude := strings.Contains(model, "claude")
	switch {
	case provider == "anthropic" || claude && (provider == "bedrock" || provider == "vertex"):
		return familyAnthropic
	case provider == "gemini" || provider == "vertex":
		return familyGemini
	}
	return familyOpenAI
}

// patchMultiplier is the patch models' multiplier in hundredths, 0 for a
// tile model.
func patchMultiplier(model string) int {
	switch {
	case strings.HasPrefix(model, "gpt-4.1-nano"), strings.HasPrefix(model, "gpt-5-nano"):
		return 246
	case strings.HasPrefix(model, "o4-mini"):
		return 172
	case strings.HasPrefix(model, "gpt-4.1-mini"), strings.HasPrefix(model, "gpt-5-mini"):
		return 162
	}
	return 0
}

// tileCost is a tile model's base and per-tile cost.
func tileCost(model string) (base, tile int) {
	switch {
	case strings.HasPrefix(model, "gpt-4o-mini"):
		return 2833, 5667
	case strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"), strings.HasPrefix(model, "computer-use"):
		return 75, 150
	case strings.HasPrefix(model, "gpt-5"):
		return 70, 140
	}
	return 85, 170
}

// imageSize reads an image's width and height from the header of a
// base64 data: URL (raw: the JSON string with its quotes), decoding only
// the few bytes it needs. It returns 0, 0 when it cannot tell.
func imageSize(raw string) (w, h int) {
	s, ok := base64Payload(raw)
	if !ok {
		return 0, 0
	}
	var hd [32]byte
	if b64At(s, 0, hd[:]) < len(hd) {
		return 0, 0
	}
	switch {
	case string(hd[:8]) == "\x89PNG\r\n\x1a\n" && string(hd[12:16]) == "IHDR":
		return be32(hd[16:]), be32(hd[20:])
	case string(hd[:4]) == "GIF8":
		return int(hd[6]) | int(hd[7])<<8, int(hd[8]) | int(hd[9])<<8
	case string(hd[:4]) == "RIFF" && string(hd[8:12]) == "WEBP":
		switch string(hd[12:16]) {
		case "VP8X":
			return 1 + le24(hd[24:]), 1 + le24(hd[27:])
		case "VP8 ":
			return (int(hd[26]) | int(hd[27])<<8) & 0x3fff, (int(hd[28]) | int(hd[29])<<8) & 0x3fff
		case "VP8L":
			b := uint32(hd[21]) | uint32(hd[22])<<8 | uint32(hd[23])<<16 | uint32(hd[24])<<24
			return int(b&0x3fff) + 1, int(b>>14&0x3fff) + 1
		}
	case hd[0] == 0xff && hd[1] == 0xd8:
		return jpegSize(s)
	}
	return 0, 0
}

// base64Payload is the base64 of a JSON string (raw, with its quotes)
// holding a data: URL or bare base64 (Anthropic's source.data); ok is
// false for an http(s) URL or a data: URL that is not base64.
func base64Payload(raw string) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	s = raw[1 : len(raw)-1]
	if strings.HasPrefix(s, "data:") {
		i := strings.Index(s[:min(len(s), 256)], ";base64,")
		if i < 0 {
			return "", false
		}
		return s[i+len(";base64,"):], true
	}
	if strings.HasPrefix(s, "http") {
		return "", false
	}
	return s, true
}

// jpegSize walks a base64 JPEG's segments to its SOFn marker, decoding
// four bytes per segment (at most 64 segments).
func jpegSize(s string) (w, h int) {
	off := 2
	var seg [9]byte
	for range 64 {
		if b64At(s, off, seg[:4]) < 4 || seg[0] != 0xff {
			return 0, 0
		}
		m := seg[1]
		switch {
		case m == 0xff: // fill byte
			off++
			continue
		case m == 0x01 || m >= 0xd0 && m <= 0xd7: // no length
			off += 2
			continue
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			if b64At(s, off, seg[:]) < len(seg) {
				return 0, 0
			}
			return int(seg[7])<<8 | int(seg[8]), int(seg[5])<<8 | int(seg[6])
		}
		off += 2 + (int(seg[2])<<8 | int(seg[3]))
	}
	return 0, 0
}

// b64At decodes len(dst) bytes of standard base64 s starting at decoded
// byte off. It returns how many it decoded: fewer at the end of s or at
// an invalid character.
func b64At(s string, off int, dst []byte) int {
	if off < 0 {
		return 0
	}
	n := 0
	skip := off % 3
	var q [4]byte
	var out [3]byte
	for i := off / 3 * 4; n < len(dst) && i+4 <= len(s); i += 4 {
		copy(q[:], s[i:i+4])
		k, err := base64.StdEncoding.Decode(out[:], q[:])
		if err != nil {
			return n
		}
		for _, b := range out[skip:k] {
			if n == len(dst) {
				break
			}
			dst[n] = b
			n++
		}
		skip = 0
	}
	return n
}

func be32(b []byte) int {
	v := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	return v
}

func le24(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }
