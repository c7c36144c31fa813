package anthropic

import (
	"time"

	"github.com/weir-ai/weir/extproc/provider"
)

// TranslateResponseHeaders maps Anthropic's rate-limit headers to OpenAI's
// x-ratelimit-* names. Anthropic's resets are RFC 3339 instants; OpenAI's
// are durations such as "6m0s", so a parsable reset becomes the time left
// until it (never negative), rounded to the millisecond, and an unparsable
// one passes as is. The token trio comes from anthropic-ratelimit-tokens-*
// (the most restrictive combined limit), or the input-tokens-* headers when
// those are absent. retry-after passes through.
func (t *translator) TranslateResponseHeaders(get func(name string) string) []provider.Header {
	var hs []provider.Header
	add := func(key, value string) {
		if value != "" {
			hs = append(hs, provider.Header{Key: key, Value: value})
		}
	}
	add("x-ratelimit-limit-requests", get("anthropic-ratelimit-requests-limit"))
	add("x-ratelimit-remaining-requests", get("anthropic-ratelimit-requests-remaining"))
	add("x-ratelimit-reset-requests", resetIn(get("anthropic-ratelimit-requests-reset")))
	tok := "anthropic-ratelimit-tokens-"
	if get(tok+"limit") == "" && get(tok+"remaining") == "" {
		tok = "anthropic-ratelimit-input-tokens-"
	}
	add("x-ratelimit-limit-tokens", get(tok+"limit"))
	add("x-ratelimit-remaining-tokens", get(tok+"remaining"))
	add("x-ratelimit-reset-tokens", resetIn(get(tok+"reset")))
	add("retry-after", get("retry-after"))
	return hs
}

// resetIn turns an RFC 3339 instant into the duration left until it.
func resetIn(v string) string {
	if v == "" {
		return ""
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return v
	}
	d := at.Sub(now()).Round(time.Millisecond)
	if d < 0 {
		d = 0
	}
	return d.String()
}
