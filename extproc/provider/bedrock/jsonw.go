package bedrock

import (
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// JSON helpers: thin wrappers over extproc/provider/jsonw, kept as local
// names so the translation code reads the same in every provider.

func bstr(b []byte) string { return jsonw.View(b) }
