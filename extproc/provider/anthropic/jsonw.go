package anthropic

import (
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// JSON helpers: thin wrappers over extproc/provider/jsonw, kept as local
// names so the translation code reads the same in every provider.

func bstr(b []byte) string                              { return jsonw.View(b) }
func appendString(dst []byte, s string) []byte          { return jsonw.AppendString(dst, s) }
func appendRawString(dst []byte, r gjson.Result) []byte { return jsonw.AppendRawString(dst, r) }
func rawStringBody(r gjson.Result) string               { return jsonw.RawStringBody(r) }
func appendCompactAsString(dst []byte, raw string) []byte {
	return jsonw.AppendCompactAsString(dst, raw)
}
