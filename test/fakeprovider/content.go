package fakeprovider

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxEcho is how many characters of the user's text a reply repeats.
const maxEcho = 200

// words counts whitespace-separated words; it is the fakes' tokenizer.
func words(s string) int { return len(strings.Fields(s)) }

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

func echoReply(name, text string) string {
	return "Hello from " + name + "! You said: " + truncate(text, maxEcho)
}

func toolResultReply(name, text string) string {
	return "Hello from " + name + "! Tool result: " + truncate(text, maxEcho)
}

// wordChunks splits s into chunks of (leading whitespace + word); trailing
// whitespace goes with the last chunk. The chunks concatenate to s, and
// len(wordChunks(s)) == words(s) for any s with at least one word.
func wordChunks(s string) []string {
	var out []string
	start := 0
	inWord := false
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if inWord && sp {
			// End of a word: cut here unless this is trailing whitespace.
			if strings.TrimSpace(s[i:]) != "" {
				// Cut only at the start of the next word, so whitespace
				// leads the next chunk.
				out = append(out, s[start:i])
				start = i
			}
		}
		inWord = !sp
	}
	if start < len(s) {
		if len(out) > 0 && strings.TrimSpace(s[start:]) == "" {
			out[len(out)-1] += s[start:]
		} else {
			out = append(out, s[start:])
		}
	}
	return out
}

// shapeText applies max_tokens and exact-usage to a text reply. It returns
// the final text and whether it was cut by max_tokens.
func shapeText(text string, maxTokens int, exact bool) (string, bool) {
	chunks := wordChunks(text)
	if exact && maxTokens > 0 {
		for len(chunks) < maxTokens {
			chunks = append(chunks, " lorem")
		}
		if len(chunks) > maxTokens {
			chunks = chunks[:maxTokens]
		}
		return strings.Join(chunks, ""), false
	}
	if maxTokens > 0 && len(chunks) > maxTokens {
		return strings.Join(chunks[:maxTokens], ""), true
	}
	return text, false
}

// splitPieces splits s into up to three pieces on rune boundaries (at least
// two when s has two or more runes), for streaming partial JSON.
func splitPieces(s string) []string {
	r := []rune(s)
	if len(r) < 2 {
		return []string{s}
	}
	n := 3
	if len(r) < 3 {
		n = 2
	}
	size := (len(r) + n - 1) / n
	var out []string
	for i := 0; i < len(r); i += size {
		j := min(i+size, len(r))
		out = append(out, string(r[i:j]))
	}
	return out
}

// schemaArgs builds deterministic tool arguments from a JSON schema: each
// required property, in order, gets its first enum value or a value by type.
func schemaArgs(schema json.RawMessage) string {
	var sc struct {
		Properties map[string]struct {
			Type json.RawMessage   `json:"type"`
			Enum []json.RawMessage `json:"enum"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(schema, &sc) // a broken schema yields {}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, name := range sc.Required {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		buf.Write(k)
		buf.WriteByte(':')
		prop := sc.Properties[name]
		if len(prop.Enum) > 0 {
			var compact bytes.Buffer
			if json.Compact(&compact, prop.Enum[0]) == nil {
				buf.Write(compact.Bytes())
				continue
			}
		}
		buf.WriteString(valueForType(schemaType(prop.Type)))
	}
	buf.WriteByte('}')
	return buf.String()
}

// schemaType returns a schema's type, the first non-"null" one for a list.
func schemaType(raw json.RawMessage) string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, t := range many {
			if t != "null" {
				return t
			}
		}
		if len(many) > 0 {
			return many[0]
		}
	}
	return ""
}

func valueForType(t string) string {
	switch t {
	case "number", "integer":
		return "1"
	case "boolean":
		return "true"
	case "array":
		return "[]"
	case "object":
		return "{}"
	case "null":
		return "null"
	default:
		return `"test"`
	}
}

// toolCallTokens is the completion-token count of a tool call.
func toolCallTokens(args string) int { return 1 + words(args) }

// jsonString decodes raw as a JSON string; ok is false if it is not one.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}
