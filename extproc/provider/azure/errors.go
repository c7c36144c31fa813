package azure

import (
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// ErrorBody converts an Azure OpenAI error body (or whatever a proxy in
// front of Azure sent) into an OpenAI error body, keeping the message.
//
// Azure's shape is {"error":{"code","message","param","type","status",
// "innererror"}}, where type is often null and code may be a number in a
// string ("429") or an Azure name ("DeploymentNotFound").
func ErrorBody(status int, body []byte) []byte {
	if !gjson.ValidBytes(body) {
		return errs.Encode(openai.TextMessage(status, body), errs.TypeForStatus(status), codeForStatus(status))
	}
	e := gjson.GetBytes(body, "error")
	if !e.IsObject() {
		// {"error":"..."}, {"message":"..."} and other near misses.
		msg := ""
		for _, p := range []string{"error", "message", "detail"} {
			if r := gjson.GetBytes(body, p); r.Type == gjson.String && r.Str != "" {
				msg = r.Str
				break
			}
		}
		if msg == "" {
			msg = openai.TextMessage(status, body)
		}
		return errs.Encode(msg, errs.TypeForStatus(status), codeForStatus(status))
	}
	msg := e.Get("message").String()
	if msg == "" {
		msg = "upstream returned status " + strconv.Itoa(status)
	}
	code := e.Get("code").String()
	inner := e.Get("innererror")
	if code == "content_filter" || inner.Get("code").Str == "ResponsibleAIPolicyViolation" {
		if cats := filtered(inner.Get("content_filter_result")); cats != "" {
			msg += " (filtered: " + cats + ")"
		}
		return errs.Encode(msg, "invalid_request_error", "content_filter")
	}
	typ := e.Get("type")
	t := typ.Str
	if typ.Type != gjson.String || t == "" {
		t = errs.TypeForStatus(status)
	}
	switch {
	case code == "" || isDigits(code):
		code = codeForStatus(status)
	case code == "DeploymentNotFound":
		code = "model_not_found"
	}
	return errs.Encode(msg, t, code)
}

// filtered lists the content filter categories marked filtered, sorted.
func filtered(r gjson.Result) string {
	var cats []string
	r.ForEach(func(k, v gjson.Result) bool {
		if v.Get("filtered").Bool() {
			cats = append(cats, k.String())
		}
		return true
	})
	sort.Strings(cats)
	return strings.Join(cats, ", ")
}

func codeForStatus(status int) string {
	switch status {
	case 401:
		return "invalid_api_key"
	case 404:
		return "not_found"
	case 429:
		return "rate_limit_exceeded"
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
