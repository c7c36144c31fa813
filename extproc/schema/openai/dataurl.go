package openai

import "strings"

// Data URLs are how OpenAI requests carry inline media: image_url.url and
// file.file_data.

// ParseDataURL splits "data:<media>[;params];base64,<data>".
func ParseDataURL(u string) (media, data string, ok bool) {
	if len(u) < 5 || !strings.EqualFold(u[:5], "data:") {
		return "", "", false
	}
	rest := u[5:]
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return "", "", false
	}
	meta, data := rest[:comma], rest[comma+1:]
	if len(meta) < 7 || !strings.EqualFold(meta[len(meta)-7:], ";base64") {
		return "", "", false
	}
	media = meta[:len(meta)-7]
	if k := strings.IndexByte(media, ';'); k >= 0 {
		media = media[:k]
	}
	if media == "" || data == "" {
		return "", "", false
	}
	return strings.ToLower(media), data, true
}

// HasPrefixFold reports whether s begins with prefix, ignoring ASCII case
// (URL schemes).
func HasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
