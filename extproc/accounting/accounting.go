// Package accounting is the stage that closes a request's books: it
// settles the reservation with the usage the request is billed, which
// writes the spend record, and records the request's metrics and access
// log line. It runs at the end of every request, answered, refused,
// completed, cut or abandoned, exactly once (the router's stream ends
// once).
package accounting

import (
	"cmp"
	"context"
	"strconv"
	"time"

	"github.com/weir-ai/weir/extproc/accesslog"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/delivered"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/tokens"
)

// Metrics records a finished request (extproc/metrics).
type Metrics interface {
	Request(model, backend, endpoint string, status int, d time.Duration)
	Tokens(model, backend string, prompt, completion, cached, cacheWrite int64)
	Spend(model, backend string, usd float64)
	// IncompleteStream counts a stream that did not end cleanly: reason
	// "no_final_event" (the client never got the stream's last event: the
	// upstream stream was cut, or the client left) or "no_usage" (it ended,
	// but the provider never reported usage, so it was billed from what was
	// delivered).
	IncompleteStream(model, backend, reason string)
}

// HeaderCost carries a buffered response's cost in USD, when the policy
// enables it (limits.cost_header).
const HeaderCost = "x-weir-cost"

// Stage is the accounting stage.
type Stage struct {
	// Gate settles reservations. Concrete, not an interface: the outcome
	// handed to it then stays on the stack.
	Gate    *admission.Gate
	Metrics Metrics
	// Access returns the access logger of the moment (a reload may turn
	// body logging on or off).
	Access func() *accesslog.Logger
	Now    func() time.Time
	// Tokenize counts a body's tokens for a model; nil is the model's BPE
	// ([tokens.ForModel]).
	Tokenize func(model string, body []byte) (int, error)
}

func (Stage) Name() string { return "accounting" }

// ResponseHeaders starts following a stream's delivered text.
func (Stage) ResponseHeaders(_ context.Context, r *pipeline.Request, resp *pipeline.Response) {
	if resp.Stream {
		resp.Delivered = delivered.New(cmp.Or(r.Target.UpstreamModel, r.Model))
	}
}

// ResponseBody follows what the client gets: a stream's text, for billing
// a stream that ends early, and the body for the access log when it logs
// bodies. A buffered body's cost goes in a header, when enabled (a
// stream's headers left before its usage was known).
func (a Stage) ResponseBody(_ context.Context, r *pipeline.Request, resp *pipeline.Response, out []byte) ([]byte, error) {
	if resp.Delivered != nil {
		resp.Delivered.Feed(out)
	}
	if l := a.Access(); l.Bodies && len(resp.Body) < accesslog.MaxBodyBytes {
		resp.Body = append(resp.Body, out...)
	}
	if !resp.Stream && resp.Served != nil && r.Ticket.Priced {
		if p := r.Runtime.Policy; p != nil && p.CostHeader {
			usd := float64(r.Ticket.Cost(resp.Usage)) / 1e6
			resp.SetHeader(HeaderCost, strconv.FormatFloat(usd, 'f', 6, 64))
		}
	}
	return out, nil
}

// End writes the request's metrics and access log line and, for a request
// that went upstream, settles its reservation with the usage billed.
func (a Stage) End(ctx context.Context, r *pipeline.Request, resp *pipeline.Response) {
	model, backend := "", ""
	if r.Target.Model != nil {
		model = r.Target.Model.Name
	}
	if resp.Served != nil {
		backend = resp.Served.Config.Name
	} else if r.Backend != nil {
		backend = r.Backend.Config.Name
	}
	lat := a.Now().Sub(r.Start)
	a.Metrics.Request(model, backend, r.Endpoint.String(), resp.Status, lat)
	u, partial := a.Billed(r, resp)
	a.Metrics.Tokens(model, backend, u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens)
	if partial && resp.Stream {
		reason := "no_usage"
		if !resp.Delivered.Terminal() {
			reason = "no_final_event"
		}
		a.Metrics.IncompleteStream(model, backend, reason)
	}
	e := accesslog.Entry{
		RequestID:        r.ID,
		ReservationID:    r.ReservationID,
		Method:           r.Method,
		Path:             r.Path,
		Endpoint:         r.Endpoint.String(),
		Model:            r.Model,
		Backend:          backend,
		Status:           resp.Status,
		Stream:           r.Stream,
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		CachedTokens:     u.CachedTokens,
		Latency:          lat,
		RequestBody:      r.Body,
		ResponseBody:     resp.Body,
	}
	if resp.Err != nil {
		e.Error = resp.Err.Error()
	}
	a.Access().Log(ctx, &e)
	if !r.Routed {
		return
	}
	t := &r.Ticket
	o := &admission.Outcome{ClientRequestID: r.ID, Status: resp.Status, Usage: u, Backend: backend, Model: model, Latency: lat, Partial: partial}
	if r.Backend != nil {
		o.Provider, o.Upstream = string(r.Backend.Config.Provider), r.Target.UpstreamModel
	}
	a.Gate.Settle(ctx, t, r.ReservationID, o)
	a.Metrics.Spend(model, backend, float64(t.Cost(u))/1e6)
}

// Billed is the usage a request is billed, and whether it is partial. A
// stream is complete when its terminal event went to the client with the
// provider's usage known; then the provider's usage stands as reported.
// Any other stream (the client left, the upstream cut it, or it ended
// without a usage event) is partial: its completion is the larger of the
// usage observed and the tokens delivered, and a prompt the provider never
// reported is the reservation's prompt estimate, an upper bound. The
// provider's final usage, when it came, thus always wins over the count,
// and nothing is counted twice.
func (a Stage) Billed(r *pipeline.Request, resp *pipeline.Response) (provider.Usage, bool) {
	u := resp.Usage
	d := resp.Delivered
	if d == nil || (d.Terminal() && u.Known()) {
		return u, false
	}
	u.CompletionTokens = max(u.CompletionTokens, d.Tokens())
	if u.PromptTokens == 0 {
		// The reservation's estimate is an upper bound that counts text
		// bytes as tokens (and images by their documented cost); the BPE
		// count of the body, framing included, also bounds the prompt and
		// is far tighter for text. Take the smaller. Only streams that end
		// without the provider's usage pay for tokenizing.
		u.PromptTokens = a.Gate.PromptEstimate(&r.Ticket, r.Body)
		count := a.Tokenize
		if count == nil {
			count = bpeCount
		}
		if n, err := count(r.Target.UpstreamModel, r.Body); err == nil && n > 0 {
			u.PromptTokens = min(u.PromptTokens, int64(n))
		}
	}
	u.TotalTokens = max(u.TotalTokens, u.PromptTokens+u.CompletionTokens)
	return u, true
}

func bpeCount(model string, body []byte) (int, error) { return tokens.ForModel(model).Count(body) }
