package pipeline

import (
	"cmp"
	"context"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/ingress"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/schema/messages"
)

// Ingress decides, once the backend is known, whether the request goes
// through in the client's own format or in the canonical one. A backend
// that serves the client's endpoint natively (provider.Native: Anthropic
// Messages to Anthropic, Bedrock InvokeModel or Vertex rawPredict) gets
// the client's body as it is, so nothing the canonical shape cannot carry
// is lost (stop sequences, cache writes, thinking, server tools). Any
// other backend gets the body translated to OpenAI chat completions by
// the ingress, and the response is translated back.
//
// The client's anthropic-beta header goes to a native backend only when
// the backend forwards it (forward_headers), as any other header.
type Ingress struct{}

func (Ingress) Name() string { return "ingress" }

func (Ingress) Request(_ context.Context, r *Request) error {
	if openAIEndpoint(r.Endpoint) {
		return nil // the canonical format: every translator reads it
	}
	beta := r.AnthropicBeta
	// A beta can switch on paid modes Weir does not price (a larger
	// context at a higher rate) in the account every key shares, so it
	// crosses only where the operator forwards it, as for any header.
	r.AnthropicBeta = ""
	if n, ok := r.Backend.Translator.(provider.Native); ok && n.Serves(r.Endpoint, r.Target.UpstreamModel) {
		if r.Endpoint == provider.EndpointMessages {
			if gjson.GetBytes(r.Body, "anthropic_beta").Exists() {
				// Bedrock and Vertex read betas from the body: the same
				// rule as the header must hold there.
				return fmt.Errorf("%w: 'anthropic_beta' is not a Messages API field; send the anthropic-beta header", errs.ErrInvalidRequest)
			}
			// Before Admit: a request naming another tenant's stored
			// state reserves nothing.
			if err := messages.NativeCheckStoredState(r.Body); err != nil {
				return err
			}
			if r.Backend.Forward.Has("anthropic-beta") {
				r.AnthropicBeta = beta
			}
		}
		return nil
	}
	body, err := r.Ingress.Canonical(r.Body)
	if err != nil {
		return err
	}
	r.Body, r.Endpoint, r.Canonical, r.Rewritten = body, provider.EndpointChat, true, true
	// The ingress's stream needs the provider's usage, which the
	// canonical body asks for whatever the client did.
	r.IncludeUsage = r.Stream
	return nil
}

func openAIEndpoint(e provider.Endpoint) bool {
	switch e {
	case provider.EndpointChat, provider.EndpointEmbeddings, provider.EndpointCompletions, provider.EndpointResponses:
		return true
	}
	return false
}

// CountTokens answers a token-count request (Anthropic's
// /v1/messages/count_tokens) itself. The key was checked by Auth, as for
// the operation it counts for; the request takes a slot on the key's RPM
// and parallel counters (no tokens, no cost) while the count runs, since
// counting costs CPU and a key at its limit is refused before it.
type CountTokens struct{ Gate *admission.Gate }

func (CountTokens) Name() string { return "count_tokens" }

func (c CountTokens) Request(ctx context.Context, r *Request) error {
	if !r.Count {
		return nil
	}
	counter, ok := r.Ingress.(ingress.Counter)
	if !ok {
		return fmt.Errorf("%w: %s does not count tokens", errs.ErrNotFound, r.Path)
	}
	if p := r.Runtime.Policy; c.Gate != nil && p != nil && p.Active(c.Gate) {
		// Per-model limits follow the resolved model, as for the
		// operation counted.
		limitName := r.Model
		if t, ok := r.Runtime.Routes.Resolve(r.Model); ok {
			limitName = cmp.Or(t.LimitName(), r.Model)
		}
		ar := &admission.Request{ID: r.ReservationID, Model: limitName, Session: r.Session}
		if err := c.Gate.ReserveRequest(ctx, p, &r.Ticket, ar); err != nil {
			return err
		}
		defer c.Gate.Release(ctx, &r.Ticket, r.ReservationID)
	}
	out, err := counter.CountTokens(r.Body)
	if err != nil {
		return err
	}
	r.Answer = &Answer{Status: 200, Body: out, Details: "weir_count_tokens"}
	return nil
}
