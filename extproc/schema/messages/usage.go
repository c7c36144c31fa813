package messages

import (
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
)

// counts is a Messages usage object's four figures, as read or as a
// stream reports them piecewise. Anthropic's input_tokens excludes the
// prompt tokens read from or written to the cache, so prompt tokens are
// the sum of the three. Thinking tokens are part of output_tokens.
type counts struct{ in, out, read, write int64 }

// usage is the counts in OpenAI terms.
func (c counts) usage() provider.Usage {
	prompt := c.in + c.read + c.write
	return provider.Usage{
		PromptTokens:     prompt,
		CompletionTokens: c.out,
		TotalTokens:      prompt + c.out,
		CachedTokens:     c.read,
		CacheWriteTokens: c.write,
	}
}

// take takes every figure of a complete usage object (a reply's), each
// read by count.
func (c *counts) take(u gjson.Result, count func(gjson.Result) int64) {
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "input_tokens":
			c.in = count(v)
		case "output_tokens":
			c.out = count(v)
		case "cache_read_input_tokens":
			c.read = count(v)
		case "cache_creation_input_tokens":
			c.write = count(v)
		}
		return true
	})
}

// observe takes a stream's usage object: message_start carries the input
// and cache tokens, message_delta the cumulative output tokens and, in
// newer API versions, the input and cache counts again, which are taken
// when not zero.
func (c *counts) observe(u gjson.Result, count func(gjson.Result) int64) {
	u.ForEach(func(k, v gjson.Result) bool {
		n := count(v)
		switch k.Str {
		case "output_tokens":
			c.out = n
		case "input_tokens":
			if n > 0 {
				c.in = n
			}
		case "cache_read_input_tokens":
			if n > 0 {
				c.read = n
			}
		case "cache_creation_input_tokens":
			if n > 0 {
				c.write = n
			}
		}
		return true
	})
}
