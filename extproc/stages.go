package extproc

import (
	"github.com/weir-ai/weir/extproc/accesslog"
	"github.com/weir-ai/weir/extproc/accounting"
	"github.com/weir-ai/weir/extproc/pipeline"
)

// Stages is a request's whole life at the router-level filter, in order.
// Each stage acts on the request, on the response headers, on the body or
// each chunk, and at the end, as it needs (pipeline.Stage); the router
// runs the hooks and does the translation between them. Adding a stage
// means its folder and one line here.
//
//   - Parse checks the body and reads what routing needs, in the client's
//     format, without unmarshalling it.
//   - Auth checks the virtual key (blocked, expired, allowed models) and
//     applies its alias.
//   - CountTokens answers a count_tokens request itself.
//   - Route resolves the model to a backend.
//   - Ingress passes the request through in the client's format when the
//     backend serves it natively, and otherwise translates it to OpenAI's.
//   - StoredResponses guards the Responses API's stored state.
//   - Admit reserves the request on every budget and limit; on the
//     response, it puts the key's own rate-limit headers in place of the
//     provider's.
//   - ContextWindow refuses what cannot fit the model. It runs after
//     Admit, so a key at its limit buys no tokenizing.
//   - Accounting follows what the client gets and, at the end, settles the
//     reservation with the usage billed (the spend record), and writes the
//     metrics and the access log line.
func (s *Server) Stages() []pipeline.Stage {
	return []pipeline.Stage{
		pipeline.Parse{},
		pipeline.Auth{Gate: s.gate},
		pipeline.CountTokens{Gate: s.gate},
		pipeline.Route{},
		pipeline.Ingress{},
		pipeline.StoredResponses{},
		pipeline.Admit{Gate: s.gate},
		pipeline.ContextWindow{},
		accounting.Stage{
			Gate:    s.gate,
			Metrics: s.metrics,
			Access:  func() *accesslog.Logger { return s.access.Load() },
			Now:     s.now,
		},
	}
}
