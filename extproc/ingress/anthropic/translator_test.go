package anthropic

import "github.com/weir-ai/weir/extproc/provider"

// translator is the tests' view of the package's translation: Request
// also reports the model and the stream flag it read, and Response takes
// the status, as the goldens record them. Production code goes through
// [Adapter].
type translator struct{ est Estimator }

func New(est Estimator) translator {
	if est == nil {
		est = DefaultEstimator{}
	}
	return translator{est: est}
}

func (translator) Request(body []byte) ([]byte, string, bool, error) {
	return translateRequest(body, false)
}

func (translator) Response(status int, body []byte, clientModel string) ([]byte, error) {
	if status >= 400 {
		return ErrorBody(status, body), nil
	}
	return translateResponse(body, clientModel, "")
}

func (translator) NewStream(clientModel, requestID string) provider.Stream {
	return newStream(clientModel, requestID)
}

func (t translator) CountTokens(body []byte) ([]byte, error) { return CountTokens(body, t.est) }
