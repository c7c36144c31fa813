package gemini

import (
	"net/url"
	"strings"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/gemini"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// TranslateRequest builds a generateContent, streamGenerateContent,
// embedContent or batchEmbedContents request.
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	root, err := openai.ParseObject(req.Body)
	if err != nil {
		return nil, err
	}
	model := req.Model
	if model == "" {
		model = root.Get("model").String()
	}
	model = strings.TrimPrefix(model, "models/")
	if model == "" {
		return nil, openai.Invalid("model is required")
	}
	var body []byte
	var op string
	switch req.Endpoint {
	case provider.EndpointChat:
		var stream bool
		body, stream, err = gemini.ChatBody(req, root)
		op = "generateContent"
		if stream {
			op = "streamGenerateContent?alt=sse"
		}
	case provider.EndpointEmbeddings:
		body, op, err = gemini.EmbeddingsBody(root, model)
	default:
		return nil, openai.Unsupported("the %s endpoint (Gemini serves chat completions and embeddings)", req.Endpoint)
	}
	if err != nil {
		return nil, err
	}
	up := &provider.Upstream{
		Path:    "/" + t.version + "/models/" + url.PathEscape(model) + ":" + op,
		Body:    body,
		Headers: make([]provider.Header, len(t.headers)),
	}
	copy(up.Headers, t.headers)
	return up, nil
}
