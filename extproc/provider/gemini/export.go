package gemini

import (
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// Exported for providers that carry Gemini's wire format inside their own
// (Vertex AI's publishers/google models).

// TranslateChatBody is the generateContent body for an OpenAI chat request,
// exactly what TranslateRequest sends upstream, and whether the client
// asked for a stream (streamGenerateContent).
func TranslateChatBody(req *provider.Request) (body []byte, stream bool, err error) {
	js := bstr(req.Body)
	if !gjson.Valid(js) {
		return nil, false, invalid("body is not valid JSON")
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, false, invalid("body must be a JSON object")
	}
	return chatBody(req, root)
}
