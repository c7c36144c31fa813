// Package errs defines the errors a client may see and maps each to its HTTP
// status and OpenAI error fields in one table.
//
// Components wrap a sentinel with context, for example
//
//	fmt.Errorf("%w: model %q is not served here", errs.ErrModelNotFound, name)
//
// and the server turns it into a response with [Status] and [Body]. An error
// that wraps no sentinel is internal: the client gets a generic 500 and the
// detail goes only to the log.
package errs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// User-facing sentinels. Their text is the start of the client's message.
var (
	ErrInvalidJSON      = errors.New("request body is not valid JSON")
	ErrInvalidRequest   = errors.New("invalid request")
	ErrModelNotFound    = errors.New("model not found")
	ErrNotFound         = errors.New("not found")
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrBodyTooLarge     = errors.New("request body too large")
	ErrUnauthorized     = errors.New("unauthorized")
	ErrForbidden        = errors.New("forbidden")
	// ErrUnpriced: a budget applies but the model has no price, so the
	// budget could not count what it costs.
	ErrUnpriced    = errors.New("model has no price")
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrExceedsLimit: the request's estimate alone is more than a limit
	// allows, so waiting cannot help.
	ErrExceedsLimit   = errors.New("request exceeds a limit")
	ErrBudgetExceeded = errors.New("budget exceeded")
	// ErrPaymentRequired wraps a budget refusal when the config asks for
	// 402 instead of 429, and a budget that never resets, reached.
	ErrPaymentRequired = errors.New("payment required")
	ErrUnsupported     = errors.New("not supported by this model's provider")
	// ErrContextLength: the prompt plus max_tokens exceed the model's
	// context window (OpenAI's code for it).
	ErrContextLength = errors.New("context length exceeded")
	ErrUpstream      = errors.New("upstream error")
	// ErrProviderAuth: the provider refused the gateway's own credential
	// (401 or 403). A gateway fault, not the client's key.
	ErrProviderAuth     = errors.New("the gateway's credential for this model's provider was rejected")
	ErrUpstreamBadReply = errors.New("upstream returned an invalid response")
	ErrUnavailable      = errors.New("service unavailable")
)

// ErrResponseNotFound: a previous_response_id that is not one Weir issued
// to this key; whether it exists under another key is not told.
var ErrResponseNotFound = errors.New("previous response not found")

// ErrConflict: the request is valid but conflicts with the current state
// (in the admin API, a record changed since the client read it, or a name
// another record holds). A 409, which HTTP and the OpenAI SDKs
// (ConflictError) name for exactly this.
var ErrConflict = errors.New("conflict")

// Kind is how a sentinel reaches the client.
type Kind struct {
	Status int
	Type   string
	Code   string
}

// table is the one place sentinels meet HTTP statuses.
var table = []struct {
	err  error
	kind Kind
}{
	{ErrInvalidJSON, Kind{400, "invalid_request_error", "invalid_json"}},
	{ErrInvalidRequest, Kind{400, "invalid_request_error", "invalid_request"}},
	{ErrUnsupported, Kind{400, "invalid_request_error", "unsupported"}},
	{ErrContextLength, Kind{400, "invalid_request_error", "context_length_exceeded"}},
	// Before the budget kinds, which it may wrap too: a 400 is not
	// retried by SDKs (they retry 408, 409, 429 and 5xx).
	{ErrExceedsLimit, Kind{400, "invalid_request_error", "request_exceeds_limit"}},
	{ErrUnauthorized, Kind{401, "authentication_error", "invalid_api_key"}},
	{ErrForbidden, Kind{403, "permission_error", "forbidden"}},
	// Not a 429: retrying cannot help until an operator prices the model.
	{ErrUnpriced, Kind{403, "permission_error", "model_not_priced"}},
	{ErrModelNotFound, Kind{404, "invalid_request_error", "model_not_found"}},
	{ErrNotFound, Kind{404, "invalid_request_error", "not_found"}},
	{ErrResponseNotFound, Kind{404, "invalid_request_error", "previous_response_not_found"}},
	{ErrMethodNotAllowed, Kind{405, "invalid_request_error", "method_not_allowed"}},
	{ErrConflict, Kind{409, "invalid_request_error", "conflict"}},
	{ErrBodyTooLarge, Kind{413, "invalid_request_error", "request_too_large"}},
	{ErrRateLimited, Kind{429, "rate_limit_error", "rate_limit_exceeded"}},
	// Also a budget that never resets, reached: no Retry-After, and a
	// status SDKs do not retry.
	{ErrPaymentRequired, Kind{402, "insufficient_quota", "budget_exceeded"}},
	// A budget refusal is a 429 so that SDKs back off; its own code lets a
	// client tell it from a rate limit, which clears within a minute.
	{ErrBudgetExceeded, Kind{429, "rate_limit_error", "budget_exceeded"}},
	{ErrUpstreamBadReply, Kind{502, "upstream_error", "bad_upstream_response"}},
	// Never 401 or invalid_api_key: the client's key is not at fault.
	{ErrProviderAuth, Kind{502, "upstream_error", "provider_auth_failed"}},
	{ErrUpstream, Kind{502, "upstream_error", "upstream_error"}},
	{ErrUnavailable, Kind{503, "server_error", "unavailable"}},
}

var internal = Kind{500, "server_error", "internal_error"}

// credentials is how a [CredentialError] reaches the client.
var credentials = Kind{503, "server_error", "credentials_unavailable"}

// CredentialMessage is all a client learns of a [CredentialError].
const CredentialMessage = "the gateway could not obtain credentials for the provider"

// CredentialError is a failure to get Weir's own credential for a provider
// (AWS credentials, an OAuth2 access token). It is the operator's to fix,
// and its reason can name accounts, roles and identity-provider details:
// the client gets only [CredentialMessage] with a 503, and the server logs
// Err with the request id and Backend.
type CredentialError struct {
	Backend string
	Err     error
}

func (e *CredentialError) Error() string {
	return "backend " + e.Backend + ": provider credentials: " + e.Err.Error()
}

// Unwrap makes a CredentialError match [ErrUnavailable] and its cause
// (context.DeadlineExceeded, say).
func (e *CredentialError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// KindOf returns how err reaches the client, and whether it is user-facing.
func KindOf(err error) (Kind, bool) {
	// First: a credential error's cause must not decide what the client
	// sees, whatever it wraps.
	var ce *CredentialError
	if errors.As(err, &ce) {
		return credentials, true
	}
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return Kind{ue.Status, ue.Type, ue.Code}, true
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e.kind, true
		}
	}
	return internal, false
}

// Status returns the HTTP status for err.
func Status(err error) int {
	k, _ := KindOf(err)
	return k.Status
}

// Body returns the OpenAI-shaped error body for err. Internal errors get a
// generic message so that no detail (paths, addresses, keys) leaks. A
// refusal's message ends with its rule: "... [rule key.rpm]".
func Body(err error) []byte {
	k, ok := KindOf(err)
	msg := "internal error"
	if ok {
		msg = err.Error()
		var ue *UpstreamError
		var ce *CredentialError
		switch {
		case errors.As(err, &ce):
			msg = CredentialMessage
		case errors.As(err, &ue):
			msg = ue.Message
		}
		if r := RuleOf(err); r != "" {
			// The rule, machine-readable in x-weir-refusal-rule, also
			// ends the message, where a person reading a log of SDK
			// exceptions finds it.
			msg += " [rule " + r.Label() + "]"
		}
	}
	return Encode(msg, k.Type, k.Code)
}

// Encode builds {"error":{"message","type","code"}}.
func Encode(message, typ, code string) []byte {
	b := make([]byte, 0, 64+len(message))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"param":null,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, code)
	}
	return append(b, "}}"...)
}

func appendJSONString(b []byte, s string) []byte {
	// sjson escapes exactly as JSON requires; going through it keeps one
	// escaping routine in the codebase.
	out, _ := sjson.SetBytes(nil, "s", s)
	// out is {"s":"..."}; cut the wrapper.
	return append(b, out[5:len(out)-1]...)
}

// UpstreamError is a provider's error translated to OpenAI fields, with the
// provider's status kept.
type UpstreamError struct {
	Status  int
	Type    string
	Code    string
	Message string
}

func (e *UpstreamError) Error() string {
	return "upstream returned " + strconv.Itoa(e.Status) + ": " + e.Message
}

// Unwrap makes every UpstreamError match [ErrUpstream].
func (e *UpstreamError) Unwrap() error { return ErrUpstream }

// RetryAfterError carries the delay a client should wait.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the Retry-After delay carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// WrapBody makes an upstream error body OpenAI-shaped. It returns nil when
// body already is an OpenAI error, and otherwise wraps whatever the upstream
// said: OpenAI-compatible servers, and proxies in front of providers, do not
// always answer in JSON.
func WrapBody(status int, body []byte) []byte {
	valid := gjson.ValidBytes(body)
	if valid && gjson.GetBytes(body, "error.message").Type == gjson.String {
		return nil
	}
	msg := string(bytes.TrimSpace(body))
	if valid {
		// {"detail": "..."} (vLLM, FastAPI), {"error": "..."} or {"message": "..."}.
		for _, p := range []string{"error", "detail", "message"} {
			if r := gjson.GetBytes(body, p); r.Type == gjson.String {
				msg = r.Str
				break
			}
		}
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	if msg == "" {
		msg = fmt.Sprintf("upstream returned status %d", status)
	}
	return Encode(msg, TypeForStatus(status), "")
}

// TypeForStatus is OpenAI's error type vocabulary for an HTTP status.
func TypeForStatus(status int) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 429:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}
