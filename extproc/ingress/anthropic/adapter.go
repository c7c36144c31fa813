package anthropic

import (
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/ingress"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/sse"
)

// Adapter is the Anthropic Messages ingress as an [ingress.Adapter]: it
// serves POST /v1/messages, natively where the backend speaks Messages
// and through the canonical shape elsewhere, and answers
// /v1/messages/count_tokens itself ([ingress.Counter]).
type Adapter struct{ est Estimator }

var (
	_ ingress.Adapter = (*Adapter)(nil)
	_ ingress.Counter = (*Adapter)(nil)
)

// NewAdapter returns the adapter; a nil estimator means [DefaultEstimator].
func NewAdapter(est Estimator) *Adapter {
	if est == nil {
		est = DefaultEstimator{}
	}
	return &Adapter{est: est}
}

func (*Adapter) Name() string { return "anthropic" }

func (*Adapter) Canonical(body []byte) ([]byte, error) {
	out, _, _, err := translateRequest(body, false)
	return out, err
}

func (*Adapter) Response(body []byte, clientModel string) ([]byte, error) {
	return translateResponse(body, clientModel, "")
}

func (*Adapter) NewStream(clientModel, requestID string) provider.Stream {
	return newStream(clientModel, requestID)
}

func (*Adapter) ErrorBody(status int, body []byte) []byte { return ErrorBody(status, body) }

// AppendStreamError ends a stream with Anthropic's error event, which the
// SDK raises as an APIError of the error's type.
func (*Adapter) AppendStreamError(dst []byte, err error) []byte {
	status := errs.Status(err)
	return sse.AppendEvent(dst, "error", ErrorBody(status, errs.Body(err)))
}

func (a *Adapter) CountTokens(body []byte) ([]byte, error) { return CountTokens(body, a.est) }
