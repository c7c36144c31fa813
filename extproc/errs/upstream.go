package errs

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// CodeContextLength is OpenAI's code for a prompt longer than the model's
// context window; SDKs and agents match on it to trim and retry.
const CodeContextLength = "context_length_exceeded"

// contextLengthMessages are the phrases, lower-cased, by which each
// provider says the prompt exceeds the context window; only OpenAI (and
// Azure OpenAI) also send CodeContextLength:
//   - OpenAI, Azure: "This model's maximum context length is 128000
//     tokens. However, your messages resulted in 130000 tokens."
//   - Anthropic (also Claude on Vertex and, inside "The model returned the
//     following errors: ...", on Bedrock): "prompt is too long: 208310
//     tokens > 200000 maximum"
//   - Gemini, Vertex Gemini: "The input token count (1200000) exceeds the
//     maximum number of tokens allowed (1048576)."
//   - Bedrock ValidationException: "Input is too long for requested
//     model.", and "too many input tokens" from Titan and Mistral models.
var contextLengthMessages = []string{
	"maximum context length",
	"prompt is too long",
	"input token count",
	"input is too long",
	"too many input tokens",
}

// isContextLength reports whether an upstream error message says the
// prompt exceeds the model's context window.
func isContextLength(msg string) bool {
	msg = strings.ToLower(msg)
	for _, p := range contextLengthMessages {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// retryInfoType is the google.rpc.RetryInfo detail of a Google API error.
const retryInfoType = "type.googleapis.com/google.rpc.RetryInfo"

// RetryDelay is the Retry-After value, whole seconds rounded up, for the
// retry delay a Google API error (Gemini, Vertex) carries in
// error.details[] as a google.rpc.RetryInfo ("retryDelay":"37s", a
// protobuf Duration, possibly fractional). It is "" when the body has
// none. Called on error bodies only.
func RetryDelay(body []byte) string {
	var ra string
	gjson.GetBytes(body, "error.details").ForEach(func(_, d gjson.Result) bool {
		if d.Get(`\@type`).String() != retryInfoType {
			return true
		}
		v, err := time.ParseDuration(d.Get("retryDelay").String())
		if err == nil && v > 0 {
			ra = strconv.FormatInt(int64(math.Ceil(v.Seconds())), 10)
		}
		return false
	})
	return ra
}
