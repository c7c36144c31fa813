package xds

import (
	"encoding/json"
)

// OpenAI-shaped error bodies for the replies Envoy makes itself. The extproc
// answers almost everything first; these are backstops, so they use the
// same shape clients already parse.

type openAIError struct {
	Error openAIErrorBody `json:"error"`
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

func openAIErrorJSON(message, typ, code string) string {
	b, err := json.Marshal(openAIError{Error: openAIErrorBody{Message: message, Type: typ, Code: code}})
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	return string(b)
}

var (
	// BodyTooLarge is the 413 body Envoy sends when a request overflows the
	// per-connection buffer before the extproc sees it.
	BodyTooLarge = openAIErrorJSON("request body too large", "invalid_request_error", "request_too_large")
	// bodyNoRoute is the catch-all when no backend was chosen.
	// bodyUnknownHost answers a host no route serves (listener.hostnames).
	bodyUnknownHost = openAIErrorJSON("no route for this host", "invalid_request_error", "not_found")
	bodyNoRoute     = openAIErrorJSON("no route for this request", "invalid_request_error", "not_found")
)
