package anthropic

import (
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// Exported for providers that carry Anthropic's wire format inside their
// own (Amazon Bedrock's InvokeModel) or write JSON the same way.

// TranslateChatBody is the Messages API body for an OpenAI chat request,
// exactly what TranslateRequest sends upstream.
func TranslateChatBody(req *provider.Request) ([]byte, error) { return translateChat(req) }

// AppendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendRawString appends a string value taken from validated JSON.
func AppendRawString(dst []byte, r gjson.Result) []byte { return appendRawString(dst, r) }

// AppendCompactAsString appends validated JSON text as a JSON string
// without insignificant whitespace (OpenAI tool call arguments).
func AppendCompactAsString(dst []byte, raw string) []byte { return appendCompactAsString(dst, raw) }

// AppendUsage writes an OpenAI usage object.
func AppendUsage(dst []byte, u provider.Usage) []byte { return appendUsage(dst, u) }

// ParseDataURL splits "data:<media>[;params];base64,<data>".
func ParseDataURL(u string) (media, data string, ok bool) { return parseDataURL(u) }
