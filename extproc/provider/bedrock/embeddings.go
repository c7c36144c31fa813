package bedrock

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// Embedding models on InvokeModel
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html):
//   - Titan Text Embeddings: {"inputText","dimensions","normalize"} →
//     {"embedding":[...],"inputTextTokenCount":N}
//     https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
//   - Cohere Embed: {"texts":[...],"input_type":"search_document"} →
//     {"embeddings":[[...]],"id","response_type","texts"} (or, with
//     embedding_types, {"embeddings":{"float":[[...]]}})
//     https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html

// maxCohereTexts is Cohere Embed's limit on texts per call.
const maxCohereTexts = 96

func translateEmbeddings(root gjson.Result, model string) ([]byte, error) {
	input := root.Get("input")
	if !present(input) {
		return nil, openai.Invalid("input is required")
	}
	if f := root.Get("encoding_format"); present(f) && f.Str != "float" {
		return nil, openai.Unsupported("encoding_format %q (Bedrock returns floats)", f.String())
	}
	var texts []gjson.Result
	switch {
	case input.Type == gjson.String:
		texts = []gjson.Result{input}
	case input.IsArray():
		texts = input.Array()
		if len(texts) == 0 {
			return nil, openai.Invalid("input must not be empty")
		}
		for i, t := range texts {
			if t.Type != gjson.String {
				return nil, openai.Unsupported("input[%d]: token arrays (send strings)", i)
			}
		}
	default:
		return nil, openai.Invalid("input must be a string or an array of strings")
	}
	dims := root.Get("dimensions")
	if present(dims) && (dims.Type != gjson.Number || dims.Num != math.Trunc(dims.Num) || dims.Num < 1) {
		return nil, openai.Invalid("dimensions must be a positive integer")
	}
	out := make([]byte, 0, len(input.Raw)+64)
	switch {
	case strings.Contains(model, "amazon.titan-embed"):
		if len(texts) != 1 {
			return nil, openai.Unsupported("%d inputs in one request (Titan embeds one input per request)", len(texts))
		}
		if texts[0].Str == "" {
			return nil, openai.Invalid("input must not be empty")
		}
		out = append(out, `{"inputText":`...)
		out = append(out, texts[0].Raw...)
		if present(dims) {
			out = append(out, `,"dimensions":`...)
			out = strconv.AppendInt(out, int64(dims.Num), 10)
		}
		return append(out, '}'), nil
	case strings.Contains(model, "cohere.embed"):
		if len(texts) > maxCohereTexts {
			return nil, openai.Invalid("at most %d inputs per request for Cohere Embed", maxCohereTexts)
		}
		if present(dims) {
			return nil, openai.Unsupported("dimensions for Cohere Embed")
		}
		out = append(out, `{"texts":[`...)
		for i, t := range texts {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, t.Raw...)
		}
		return append(out, `],"input_type":"search_document"}`...), nil
	}
	return nil, openai.Unsupported("embeddings with model %q (amazon.titan-embed-* and cohere.embed-* only)", model)
}

// translateEmbeddingsResponse converts a Titan or Cohere reply.
func translateEmbeddingsResponse(root gjson.Result, model string) ([]byte, provider.Usage, error) {
	out := make([]byte, 0, len(root.Raw)+128)
	out = append(out, `{"object":"list","data":[`...)
	var tokens int64
	n := 0
	item := func(vec gjson.Result) bool {
		if !vec.IsArray() {
			return false
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = strconv.AppendInt(out, int64(n), 10)
		out = append(out, `,"embedding":`...)
		out = append(out, vec.Raw...)
		out = append(out, '}')
		n++
		return true
	}
	if e := root.Get("embedding"); e.Exists() {
		if !item(e) {
			return nil, provider.Usage{}, fmt.Errorf("%w: embedding is not an array", errs.ErrUpstreamBadReply)
		}
		tokens = root.Get("inputTextTokenCount").Int()
	} else {
		es := root.Get("embeddings")
		if es.IsObject() {
			es = es.Get("float")
		}
		if !es.IsArray() {
			return nil, provider.Usage{}, fmt.Errorf("%w: no embedding or embeddings array", errs.ErrUpstreamBadReply)
		}
		ok := true
		es.ForEach(func(_, v gjson.Result) bool {
			ok = item(v)
			return ok
		})
		if !ok {
			return nil, provider.Usage{}, fmt.Errorf("%w: embeddings holds a non-array", errs.ErrUpstreamBadReply)
		}
	}
	out = append(out, `],"model":`...)
	out = jsonw.AppendString(out, model)
	out = append(out, `,"usage":{"prompt_tokens":`...)
	out = strconv.AppendInt(out, tokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, tokens, 10)
	out = append(out, `}}`...)
	return out, provider.Usage{PromptTokens: tokens, TotalTokens: tokens}, nil
}
