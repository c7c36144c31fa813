package openai

import (
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// ParseUsage reads an OpenAI usage object. Embeddings report only
// prompt_tokens and total_tokens.
func ParseUsage(u gjson.Result) provider.Usage {
	if !u.IsObject() {
		return provider.Usage{}
	}
	out := provider.Usage{
		PromptTokens:     u.Get("prompt_tokens").Int(),
		CompletionTokens: u.Get("completion_tokens").Int(),
		TotalTokens:      u.Get("total_tokens").Int(),
		CachedTokens:     u.Get("prompt_tokens_details.cached_tokens").Int(),
	}
	if in := u.Get("input_tokens"); in.Exists() {
		// The Responses API names them input and output tokens.
		out.PromptTokens = in.Int()
		out.CompletionTokens = u.Get("output_tokens").Int()
		out.CachedTokens = u.Get("input_tokens_details.cached_tokens").Int()
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// AppendUsage writes an OpenAI usage object.
func AppendUsage(out []byte, u provider.Usage) []byte {
	out = append(out, `{"prompt_tokens":`...)
	out = strconv.AppendInt(out, u.PromptTokens, 10)
	out = append(out, `,"completion_tokens":`...)
	out = strconv.AppendInt(out, u.CompletionTokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, u.TotalTokens, 10)
	out = append(out, `,"prompt_tokens_details":{"cached_tokens":`...)
	out = strconv.AppendInt(out, u.CachedTokens, 10)
	return append(out, `}}`...)
}
