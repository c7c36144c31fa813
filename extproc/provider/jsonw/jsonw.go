// Package jsonw writes JSON by appending to byte slices, for translators
// that build provider bodies without unmarshalling: one escaping routine
// for every provider and ingress, so they cannot disagree on what valid
// JSON output is.
package jsonw

import (
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// View views b as a string without copying. gjson results taken from it
// point into b, so they are valid only while b is neither modified nor
// reused; callers consume them before returning.
func View(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD so
// the output is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendRawString appends a string value taken from validated JSON as is:
// its raw form is already a correctly escaped JSON string.
func AppendRawString(dst []byte, r gjson.Result) []byte {
	if r.Type == gjson.String && len(r.Raw) >= 2 && r.Raw[0] == '"' {
		return append(dst, r.Raw...)
	}
	return AppendString(dst, r.String())
}

// RawStringBody is the escaped inside of a JSON string value (no quotes).
// Concatenating the insides of several strings yields a valid string body.
func RawStringBody(r gjson.Result) string {
	if r.Type == gjson.String && len(r.Raw) >= 2 && r.Raw[0] == '"' {
		return r.Raw[1 : len(r.Raw)-1]
	}
	return ""
}

// IsEmptyString reports whether r is the empty JSON string.
func IsEmptyString(r gjson.Result) bool { return r.Type == gjson.String && r.Str == "" }

// AppendCompactAsString appends the JSON text raw (already validated) as a
// JSON string, dropping insignificant whitespace: OpenAI tool call
// arguments are compact JSON in a string.
func AppendCompactAsString(dst []byte, raw string) []byte {
	dst = append(dst, '"')
	inStr, esc := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inStr = true
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20: // not in valid JSON strings; kept valid regardless
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// IsNonEmptyString reports whether r is a JSON string with content.
func IsNonEmptyString(r gjson.Result) bool { return r.Type == gjson.String && r.Str != "" }

// Present reports whether r exists and is not JSON null.
func Present(r gjson.Result) bool { return r.Exists() && r.Type != gjson.Null }

// Turns writes the turns of a conversation, [{"role":R,"<Key>":[...]},...],
// for providers that reject two turns of one role in a row or a turn with
// no content (Anthropic messages, Gemini contents, Bedrock Converse): a
// turn of the same role as the open one continues it, and a turn left
// empty is dropped, reopening the turn before it if that had the same
// role. The caller appends each item's JSON after calling Item.
type Turns struct {
	// Key names the item array: "content" or "parts".
	Key   string
	role  string // role of the open turn; "" when none is open
	start int    // offset of the open turn in the buffer
	items int    // items in the open turn
	count int    // turns written
	// lastRole and lastItems describe the last written turn, so it can be
	// reopened when an empty turn between two of its role is dropped.
	lastRole  string
	lastItems int
}

// Open starts a turn of role in out, or continues the open or last one.
func (t *Turns) Open(out []byte, role string) []byte {
	if t.role == role {
		return out
	}
	out = t.Close(out)
	if t.count > 0 && t.lastRole == role {
		out = out[:len(out)-len("]}")]
		t.role, t.items = role, t.lastItems
		t.count--
		return out
	}
	t.start = len(out)
	if t.count > 0 {
		out = append(out, ',')
	}
	out = append(out, `{"role":"`...)
	out = append(out, role...)
	out = append(out, `","`...)
	out = append(out, t.Key...)
	out = append(out, `":[`...)
	t.role, t.items = role, 0
	return out
}

// Item starts an item in the open turn.
func (t *Turns) Item(out []byte) []byte {
	if t.items > 0 {
		out = append(out, ',')
	}
	t.items++
	return out
}

// Close ends the open turn, dropping it if it has no items.
func (t *Turns) Close(out []byte) []byte {
	if t.role == "" {
		return out
	}
	if t.items == 0 {
		out = out[:t.start]
	} else {
		out = append(out, "]}"...)
		t.count++
		t.lastRole, t.lastItems = t.role, t.items
	}
	t.role = ""
	return out
}

// Count is the number of turns written.
func (t *Turns) Count() int { return t.count }

// Keys detects a repeated key among an object's keys, as a gjson ForEach
// visits them. JSON leaves duplicate keys to the reader, and readers
// disagree: gjson's Get takes the first, a ForEach that overwrites takes
// the last, and so do most providers. Ingresses refuse such bodies so
// every reader sees one value. The first keys are kept in an array, so
// ordinary bodies cost no allocation; the zero Keys is ready to use.
type Keys struct {
	few  [24]string
	n    int
	more map[string]struct{}
}

// Add records k (as unescaped: k.Str of a gjson key) and reports whether
// it was seen before.
func (s *Keys) Add(k string) bool {
	if s.n < len(s.few) {
		for _, p := range s.few[:s.n] {
			if p == k {
				return true
			}
		}
		s.few[s.n] = k
		s.n++
		return false
	}
	if s.more == nil {
		s.more = make(map[string]struct{}, len(s.few))
		for _, p := range s.few {
			s.more[p] = struct{}{}
		}
	}
	if _, ok := s.more[k]; ok {
		return true
	}
	s.more[k] = struct{}{}
	return false
}

// DuplicateKey is the first key that appears twice among obj's direct
// keys, and whether there is one. Nested objects are not inspected.
func DuplicateKey(obj gjson.Result) (string, bool) {
	var seen Keys
	dup, found := "", false
	obj.ForEach(func(k, _ gjson.Result) bool {
		if seen.Add(k.Str) {
			dup, found = k.Str, true
		}
		return !found
	})
	return dup, found
}
