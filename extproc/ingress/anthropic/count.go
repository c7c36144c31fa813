package anthropic

import (
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// Estimator estimates the tokens in a piece of text for a model. It is the
// seam for a real tokenizer (issue 5); [DefaultEstimator] is a heuristic.
type Estimator interface {
	Tokens(model, text string) int
}

// DefaultEstimator counts one token per 4 bytes of ASCII (rounded up) plus
// one token per non-ASCII character. English prose runs near 4 characters
// per token on current BPE vocabularies, and CJK text near one token per
// character, so this errs on the high side for most text, which is the
// safe side for fitting a context window.
type DefaultEstimator struct{}

func (DefaultEstimator) Tokens(_, text string) int {
	ascii, other := 0, 0
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
		other++
	}
	return (ascii+3)/4 + other
}

// Fixed costs CountTokens adds to what the estimator says.
const (
	// MessageOverhead is added per message (and once for the system
	// prompt) for role and turn markers.
	MessageOverhead = 3
	// ImageTokens is charged per image. Anthropic's vision guide gives
	// tokens ≈ width × height / 750 and scales down images above about
	// 1,600 tokens first; Weir does not decode images, so every image is
	// charged that usual maximum.
	ImageTokens = 1600
	// DocumentTokens is charged per base64 PDF document, whose text cannot
	// be read without decoding it: a rough page or two.
	DocumentTokens = 1500
)

// CountTokens answers POST /v1/messages/count_tokens with
// {"input_tokens":N}. The body is validated exactly as a Messages request
// (except that max_tokens is optional), then N is estimated: the system
// prompt, every text, tool input and tool result, and each tool's name,
// description and input_schema (as JSON text) go through est, with the
// fixed costs above. Anthropic's hidden tool-use system prompt is not
// counted. Errors wrap errs.ErrInvalidRequest or errs.ErrUnsupported.
func CountTokens(body []byte, est Estimator) ([]byte, error) {
	if est == nil {
		est = DefaultEstimator{}
	}
	if _, _, _, err := translateRequest(body, true); err != nil {
		return nil, err
	}
	root := gjson.Parse(jsonw.View(body))
	model := root.Get("model").Str
	c := counter{est: est, model: model}
	if sys := root.Get("system"); jsonw.Present(sys) {
		c.n += MessageOverhead
		c.content(sys)
	}
	root.Get("messages").ForEach(func(_, m gjson.Result) bool {
		c.n += MessageOverhead
		c.content(m.Get("content"))
		return true
	})
	root.Get("tools").ForEach(func(_, t gjson.Result) bool {
		c.text(t.Get("name").Str)
		c.text(t.Get("description").Str)
		c.text(t.Get("input_schema").Raw)
		return true
	})
	out := append(make([]byte, 0, 32), `{"input_tokens":`...)
	out = strconv.AppendInt(out, int64(c.n), 10)
	return append(out, '}'), nil
}

type counter struct {
	est   Estimator
	model string
	n     int
}

func (c *counter) text(s string) {
	if s != "" {
		c.n += c.est.Tokens(c.model, s)
	}
}

// content counts a string or an array of blocks (validated already).
func (c *counter) content(v gjson.Result) {
	if v.Type == gjson.String {
		c.text(v.Str)
		return
	}
	v.ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "text":
			c.text(b.Get("text").Str)
		case "image":
			c.n += ImageTokens
		case "document":
			if b.Get("source.type").Str == "text" {
				c.text(b.Get("source.data").Str)
			} else {
				c.n += DocumentTokens
			}
		case "tool_use":
			c.text(b.Get("name").Str)
			c.text(b.Get("input").Raw)
		case "tool_result":
			c.content(b.Get("content"))
		}
		return true
	})
}
