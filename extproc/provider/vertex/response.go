package vertex

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/gemini"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// TranslateResponse converts a generateContent, rawPredict, predict or
// error body; the family is recognised by the body's shape.
func (t *translator) TranslateResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	typ := gjson.GetBytes(resp.Body, "type")
	if resp.Status >= 400 {
		if typ.Str == "error" {
			return messages.TranslateResponse(resp, now().Unix())
		}
		return gemini.ErrorBody(resp.Status, resp.Body), provider.Usage{}, nil
	}
	if resp.Endpoint == provider.EndpointEmbeddings {
		return embeddingsResponse(resp)
	}
	if resp.Endpoint == provider.EndpointMessages {
		return messages.NativeResponse(resp.Body, resp.Model)
	}
	if typ.Str == "message" {
		return messages.TranslateResponse(resp, now().Unix())
	}
	return gemini.TranslateResponse(resp, now().Unix())
}

// embeddingsResponse converts a :predict reply
// ({"predictions":[{"embeddings":{"values":[...],"statistics":
// {"token_count":N,"truncated":false}}}]}) to an OpenAI embeddings list.
func embeddingsResponse(resp *provider.Response) ([]byte, provider.Usage, error) {
	js := jsonw.View(resp.Body)
	if !gjson.Valid(js) {
		return nil, provider.Usage{}, fmt.Errorf("%w: body is not JSON", errs.ErrUpstreamBadReply)
	}
	preds := gjson.Get(js, "predictions")
	if !preds.IsArray() {
		return nil, provider.Usage{}, fmt.Errorf("%w: predictions is not an array", errs.ErrUpstreamBadReply)
	}
	out := make([]byte, 0, len(resp.Body)+128)
	out = append(out, `{"object":"list","data":[`...)
	var tokens int64
	var bad error
	i := 0
	preds.ForEach(func(_, p gjson.Result) bool {
		e := p.Get("embeddings")
		vals := e.Get("values")
		if !vals.IsArray() {
			bad = fmt.Errorf("%w: predictions[%d].embeddings.values is not an array", errs.ErrUpstreamBadReply, i)
			return false
		}
		ok := true
		vals.ForEach(func(_, v gjson.Result) bool {
			ok = v.Type == gjson.Number
			return ok
		})
		if !ok {
			bad = fmt.Errorf("%w: predictions[%d].embeddings.values holds a non-number", errs.ErrUpstreamBadReply, i)
			return false
		}
		if tc := e.Get("statistics.token_count"); tc.Type == gjson.Number && tc.Num > 0 && tc.Num < 1<<53 {
			tokens += int64(tc.Num)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, `,"embedding":`...)
		out = append(out, vals.Raw...)
		out = append(out, '}')
		i++
		return true
	})
	if bad != nil {
		return nil, provider.Usage{}, bad
	}
	u := provider.Usage{PromptTokens: tokens, TotalTokens: tokens}
	out = append(out, `],"model":`...)
	out = jsonw.AppendString(out, resp.Model)
	out = append(out, `,"usage":{"prompt_tokens":`...)
	out = strconv.AppendInt(out, tokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, tokens, 10)
	return append(out, "}}"...), u, nil
}
