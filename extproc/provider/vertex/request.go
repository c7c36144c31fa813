package vertex

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/gemini"
	"github.com/weir-ai/weir/extproc/schema/messages"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// TranslateRequest builds the Vertex request for one attempt.
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	if req.Endpoint == provider.EndpointMessages {
		return t.nativeRequest(req)
	}
	model := req.Model
	if model == "" {
		model = gjson.GetBytes(req.Body, "model").Str
	}
	model = strings.TrimPrefix(model, "models/")
	if model == "" {
		if !gjson.ValidBytes(req.Body) {
			return nil, openai.Invalid("body is not valid JSON")
		}
		return nil, openai.Invalid("model is required")
	}
	var (
		body      []byte
		publisher string
		op        string
		err       error
	)
	switch req.Endpoint {
	case provider.EndpointChat:
		if isAnthropic(model) {
			publisher, op = "anthropic", ":rawPredict"
			var stream bool
			body, stream, err = anthropicBody(req, model)
			if stream {
				op = ":streamRawPredict"
			}
		} else {
			publisher, op = "google", ":generateContent"
			var stream bool
			body, stream, err = gemini.TranslateChat(req)
			if stream {
				op = ":streamGenerateContent?alt=sse"
			}
		}
	case provider.EndpointEmbeddings:
		if isAnthropic(model) {
			return nil, openai.Unsupported("embeddings with %q (Anthropic models on Vertex serve chat only)", model)
		}
		publisher, op = "google", ":predict"
		body, err = embeddingsBody(req.Body)
	default:
		return nil, openai.Unsupported("the %s endpoint (Vertex AI serves chat completions and embeddings)", req.Endpoint)
	}
	if err != nil {
		return nil, err
	}
	up := &provider.Upstream{
		Path: t.base + publisher + "/models/" + url.PathEscape(model) + op,
		Body: body,
	}
	if err := t.authorize(req, up); err != nil {
		return nil, err
	}
	return up, nil
}

// authorize sets the request's Authorization header, if the backend has a
// credential.
func (t *translator) authorize(req *provider.Request, up *provider.Upstream) error {
	if t.tokens != nil {
		h, err := t.tokens.Header(req.Ctx)
		if err != nil {
			return err
		}
		up.Headers = []provider.Header{{Key: "authorization", Value: h}}
	} else if t.static != "" {
		up.Headers = []provider.Header{{Key: "authorization", Value: t.static}}
	}
	return nil
}

// anthropicBody is the rawPredict body: Anthropic's Messages body with
// anthropic_version in place of model. messages.TranslateChat writes
// model first, so the swap is a prefix replacement.
func anthropicBody(req *provider.Request, model string) ([]byte, bool, error) {
	r := *req
	r.Model = model
	b, err := messages.TranslateChat(&r)
	if err != nil {
		return nil, false, err
	}
	stream := req.Stream || gjson.GetBytes(req.Body, "stream").Type == gjson.True
	const head = `{"anthropic_version":"` + AnthropicVersion + `"`
	var pre [128]byte
	prefix := jsonw.AppendString(append(pre[:0], `{"model":`...), model)
	if bytes.HasPrefix(b, prefix) {
		out := make([]byte, 0, len(head)+len(b)-len(prefix))
		out = append(out, head...)
		return append(out, b[len(prefix):]...), stream, nil
	}
	// Not reached with today's messages.TranslateChat; kept correct anyway.
	if b, err = sjson.DeleteBytes(b, "model"); err == nil {
		b, err = sjson.SetBytes(b, "anthropic_version", AnthropicVersion)
	}
	if err != nil {
		return nil, false, fmt.Errorf("vertex: building the rawPredict body: %w", err)
	}
	return b, stream, nil
}

// embeddingsBody is the :predict body for an OpenAI embeddings request.
func embeddingsBody(body []byte) ([]byte, error) {
	root, err := openai.ParseObject(body)
	if err != nil {
		return nil, err
	}
	var input, dims, format gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "input":
			input = v
		case "dimensions":
			dims = v
		case "encoding_format":
			format = v
		}
		return true
	})
	if format.Exists() && format.Type != gjson.Null && format.Str != "float" {
		if format.Str == "base64" {
			return nil, openai.Unsupported("encoding_format base64 (Vertex returns floats)")
		}
		return nil, openai.Invalid("encoding_format must be \"float\" or \"base64\"")
	}
	out := make([]byte, 0, len(body)+64)
	out = append(out, `{"instances":[`...)
	switch {
	case input.Type == gjson.String:
		out = appendInstance(out, input)
	case input.IsArray():
		n := 0
		var bad error
		input.ForEach(func(_, v gjson.Result) bool {
			if v.Type != gjson.String {
				if v.Type == gjson.Number || v.IsArray() {
					bad = openai.Unsupported("token-array inputs (Vertex embeds text)")
				} else {
					bad = openai.Invalid("input must be a string or an array of strings")
				}
				return false
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = appendInstance(out, v)
			n++
			return true
		})
		if bad != nil {
			return nil, bad
		}
		if n == 0 {
			return nil, openai.Invalid("input must not be empty")
		}
	case !input.Exists() || input.Type == gjson.Null:
		return nil, openai.Invalid("input is required")
	default:
		return nil, openai.Invalid("input must be a string or an array of strings")
	}
	out = append(out, ']')
	if dims.Exists() && dims.Type != gjson.Null {
		if dims.Type != gjson.Number || dims.Num != float64(int64(dims.Num)) || dims.Num < 1 || dims.Num > 1<<20 {
			return nil, openai.Invalid("dimensions must be a positive integer")
		}
		out = append(out, `,"parameters":{"outputDimensionality":`...)
		out = strconv.AppendInt(out, int64(dims.Num), 10)
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

func appendInstance(out []byte, s gjson.Result) []byte {
	out = append(out, `{"content":`...)
	out = jsonw.AppendRawString(out, s)
	return append(out, '}')
}
