// Package ingress defines the client-facing API formats Weir serves. An
// ingress is an [Adapter] chosen by the request's path
// (extproc/ingress/registry); the router never asks which one it serves.
//
// Weir's canonical request is OpenAI's chat completions. An adapter whose
// format a backend serves natively (Anthropic Messages to an Anthropic,
// Bedrock InvokeModel or Vertex rawPredict backend, see provider.Native)
// is passed through in its own format; otherwise [Adapter.Canonical]
// translates the request to the canonical shape, and [Adapter.Response]
// and [Adapter.NewStream] translate the canonical answer back. Errors are
// always in the client's format: translators report them in OpenAI's
// shape, and [Adapter.ErrorBody] reshapes them.
//
// Adding an ingress means one folder here and its paths in the registry.
package ingress

import (
	"github.com/weir-ai/weir/extproc/provider"
)

// Adapter is one client-facing API format. It holds no per-request state
// and is safe for concurrent use; per-stream state lives in the
// provider.Stream it returns.
type Adapter interface {
	// Name names the format in logs ("openai", "anthropic").
	Name() string
	// Canonical translates a request body in this format to an OpenAI chat
	// completions body, for a backend that does not serve the format
	// natively. Errors wrap errs.ErrInvalidRequest or errs.ErrUnsupported.
	Canonical(body []byte) ([]byte, error)
	// Response translates a complete OpenAI-shaped 2xx body to this
	// format; nil means the body is already right. clientModel is the name
	// the client asked for.
	Response(body []byte, clientModel string) ([]byte, error)
	// NewStream re-shapes a canonical (OpenAI SSE) stream into this format;
	// nil when no reshaping is needed. requestID seeds ids the stream
	// lacks.
	NewStream(clientModel, requestID string) provider.Stream
	// ErrorBody reshapes an error body (OpenAI-shaped, or whatever body an
	// error status came with) into this format's error body.
	ErrorBody(status int, body []byte) []byte
	// AppendStreamError appends to dst the event that ends a stream whose
	// headers already left with err, in this format.
	AppendStreamError(dst []byte, err error) []byte
}

// Counter is an adapter that answers a token-count request itself,
// without going upstream (Anthropic's count_tokens).
type Counter interface {
	CountTokens(body []byte) ([]byte, error)
}

// Op is what a path asks of an ingress.
type Op struct {
	Adapter Adapter
	// Endpoint is the operation in the client's own format:
	// provider.EndpointMessages for Anthropic's Messages API.
	Endpoint provider.Endpoint
	// Count: a token-count request, answered by the adapter's [Counter].
	Count bool
}
