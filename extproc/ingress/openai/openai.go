// Package openai is the OpenAI ingress: chat completions, embeddings,
// legacy completions and the Responses API, in OpenAI's own format, which
// is Weir's canonical one. Requests and responses pass unchanged (what a
// translator does not know, it passes through); errors are OpenAI's
// {"error":{"message","type","code"}}.
package openai

import (
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/ingress"
	"github.com/weir-ai/weir/extproc/provider"
)

// Adapter is the OpenAI ingress. It is stateless.
type Adapter struct{}

var _ ingress.Adapter = Adapter{}

func (Adapter) Name() string                                { return "openai" }
func (Adapter) Canonical(body []byte) ([]byte, error)       { return body, nil }
func (Adapter) Response(_ []byte, _ string) ([]byte, error) { return nil, nil }
func (Adapter) NewStream(_, _ string) provider.Stream       { return nil }
func (Adapter) ErrorBody(_ int, body []byte) []byte         { return body }

// AppendStreamError ends a stream the way OpenAI does: an error object as
// a data event, then [DONE], so SDKs raise it and stop reading.
func (Adapter) AppendStreamError(dst []byte, err error) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, errs.Body(err)...)
	return append(dst, "\n\ndata: [DONE]\n\n"...)
}
