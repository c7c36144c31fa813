package anthropic

import "github.com/weir-ai/weir/extproc/tokens"

// BPEEstimator counts count_tokens text with a real BPE tokenizer. Claude's
// own tokenizer is not public, so o200k_base stands in for it (documented
// in tokens.EncodingFor); the encoding loads on first use only. Should it
// fail to load, the heuristic [DefaultEstimator] answers.
type BPEEstimator struct{}

func (BPEEstimator) Tokens(model, text string) int {
	t, err := tokens.Get(tokens.EncodingFor(model))
	if err != nil {
		return DefaultEstimator{}.Tokens(model, text)
	}
	return t.Count(text)
}
