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
