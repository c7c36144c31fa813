package anthropic

import (
	"unsafe"

	"github.com/tidwall/gjson"

	pa "github.com/weir-ai/weir/extproc/provider/anthropic"
)

// JSON writing reuses the Anthropic provider's helpers so there is one
// escaping routine for both directions.
var (
	appendString          = pa.AppendString
	appendRawString       = pa.AppendRawString
	appendCompactAsString = pa.AppendCompactAsString
)

// bstr views b as a string without copying. gjson results taken from it
// point into b, so they are valid only while b is neither modified nor
// reused; every use in this package consumes them before returning.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// rawStringBody is the escaped inside of a JSON string value (no quotes).
// Concatenating the insides of several strings yields a valid string body.
func rawStringBody(r gjson.Result) string {
	if r.Type == gjson.String && len(r.Raw) >= 2 && r.Raw[0] == '"' {
		return r.Raw[1 : len(r.Raw)-1]
	}
	return ""
}

func present(r gjson.Result) bool { return r.Exists() && r.Type != gjson.Null }

// isNonEmptyString reports whether r is a JSON string with content.
func isNonEmptyString(r gjson.Result) bool { return r.Type == gjson.String && r.Str != "" }
