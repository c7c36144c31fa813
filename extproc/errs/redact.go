package errs

import (
	"regexp"
	"strings"

	"github.com/tidwall/gjson"
)

// Every provider's errors reach the client through RedactUpstream, so the
// provider account's details are removed in one place: the key prefix in
// OpenAI's "Incorrect API key provided: sk-...", the organization in its
// rate-limit messages, project ids, Azure resource names, AWS ARNs and
// access key ids, Google project numbers. Error responses are rare, so
// regular expressions (safe for concurrent use) cost nothing that matters.

// redacted replaces each account detail.
const redacted = "[redacted]"

var redactions = []struct {
	re   *regexp.Regexp
	repl string
}{
	// API keys: OpenAI and Anthropic (sk-..., masked sk-proj-****abcd or
	// sk-abc...wxyz), Google (AIza...), AWS access key ids.
	{regexp.MustCompile(`\bsk-[A-Za-z0-9_*\-]+(?:\.{3}[A-Za-z0-9_\-]+)?`), redacted},
	{regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{8,}`), redacted},
	{regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b`), redacted},
	// OpenAI organizations and projects, by id or by the name a message
	// puts after "in organization" / "in project".
	{regexp.MustCompile(`\borg-[A-Za-z0-9]+`), redacted},
	{regexp.MustCompile(`\bproj_[A-Za-z0-9]+`), redacted},
	{regexp.MustCompile(`(?i)\b(in|for|of) (organization|organisation|project) [^\s,;:()'"]+`), "$1 $2 " + redacted},
	// Anthropic organization ids, Azure subscriptions and tenants: UUIDs.
	{regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), redacted},
	// Azure resource names in endpoint hosts.
	{regexp.MustCompile(`(?i)\b[a-z0-9][a-z0-9-]*\.(openai\.azure\.com|cognitiveservices\.azure\.com|services\.ai\.azure\.com)`), redacted + ".$1"},
	// AWS ARNs carry the account id.
	{regexp.MustCompile(`\barn:aws[a-z-]*:[^\s"',]*`), redacted},
	// Google projects: resource names, quota consumers, project numbers.
	{regexp.MustCompile(`\bprojects/[^/\s"',]+`), "projects/" + redacted},
	{regexp.MustCompile(`\bproject_number:\d+`), "project_number:" + redacted},
	{regexp.MustCompile(`(?i)\bproject (?:#)?\d{6,}`), "project " + redacted},
}

// RedactMessage removes provider account details from an upstream error
// message.
func RedactMessage(msg string) string {
	for _, r := range redactions {
		msg = r.re.ReplaceAllString(msg, r.repl)
	}
	return msg
}

// RedactUpstream rebuilds a provider's error body (already translated to
// OpenAI's shape, or any text, which is wrapped as [WrapBody] does) from
// its message, type, param and code alone, the message redacted: no other
// field crosses, so a provider's extra details (request ids, account
// metadata) stay on its side. A 400 whose message says the prompt exceeds
// the context window gets OpenAI's code for it, whichever provider sent
// it, so clients match one code.
func RedactUpstream(status int, body []byte) []byte {
	if w := WrapBody(status, body); w != nil {
		body = w
	}
	e := gjson.GetBytes(body, "error")
	msg := RedactMessage(e.Get("message").String())
	typ := e.Get("type").String()
	if status == 400 && isContextLength(msg) {
		typ = "invalid_request_error"
	} else if typ == "" {
		typ = TypeForStatus(status)
	}
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, RedactMessage(typ))
	b = append(b, `,"param":`...)
	b = appendOptional(b, e.Get("param"))
	b = append(b, `,"code":`...)
	if status == 400 && isContextLength(msg) {
		b = appendJSONString(b, CodeContextLength)
	} else {
		b = appendOptional(b, e.Get("code"))
	}
	return append(b, "}}"...)
}

// appendOptional writes a string or number field as a JSON string, else
// null.
func appendOptional(b []byte, r gjson.Result) []byte {
	switch r.Type {
	case gjson.String, gjson.Number:
		return appendJSONString(b, RedactMessage(strings.TrimSpace(r.String())))
	}
	return append(b, "null"...)
}

// EncodeUpstream is [Encode] for a provider's error met inside a stream,
// where a translator re-emits it in-band: the message is redacted as
// [RedactUpstream] redacts a buffered error.
func EncodeUpstream(message, typ, code string) []byte {
	return Encode(RedactMessage(message), typ, code)
}
