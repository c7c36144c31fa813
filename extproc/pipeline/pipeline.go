// Package pipeline runs the stages of a request's life at the router-level
// filter, in order: on the request, each stage reads and enriches one
// [Request], and the first error ends the request with an immediate
// response built from that error; on the response, the same stages see the
// headers, the body or each chunk, and the end (see [Stage]).
//
// The ordered list itself is in extproc (stages.go), next to the server
// that builds it. Later features (guardrails, caching, routing
// strategies) are stages too, slotted into that list.
package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/ingress"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/route"
	"github.com/weir-ai/weir/extproc/runtime"
	"github.com/weir-ai/weir/extproc/storedid"
	"github.com/weir-ai/weir/extproc/tokens"
)

// Request is what the router-level filter knows about one request.
type Request struct {
	Runtime *runtime.Runtime

	// ID is the x-request-id Envoy passed (the client's own for a request
	// Envoy treats as internal; empty when absent). It is for logs and the
	// x-request-id response header only: clients can repeat or forge it.
	ID string
	// ReservationID is Weir's own random id for the request ([NewID]): the
	// id of its limits reservation and of its spend record.
	ReservationID string
	Method        string
	Path          string // without query
	// Start is when the request's stream opened.
	Start time.Time
	// Authorization and APIKey are the client's credentials as sent; later
	// stages authenticate them. They are never logged.
	Authorization string
	APIKey        string
	ContentType   string
	// Session is the session header's value (limits.session.header), as
	// sent; empty when absent or not configured. Admission checks it.
	Session string

	// Ingress is the client's API format, chosen by path.
	Ingress ingress.Adapter
	Body    []byte
	// AnthropicBeta is the client's anthropic-beta header, passed to a
	// backend that serves the Messages API natively.
	AnthropicBeta string
	// Answer, set by a stage, is the reply: nothing goes upstream.
	Answer *Answer

	// Filled by the parse stage. BodyModel is "model" as the body has it;
	// Model starts equal and may be renamed by a key's alias.
	BodyModel string
	Model     string
	// MaxOutput is the client's limit on the reply, read from the
	// endpoint's own field (0 when absent or not a positive number): see
	// [Parse].
	MaxOutput int64
	// PreviousResponseID is the Responses API's reference to a stored
	// response, as the client sent it ("" when absent or null); see
	// [StoredResponses].
	PreviousResponseID string

	// Filled by the route stage.
	Target  route.Target
	Backend *runtime.Backend

	// Filled by the auth and admit stages: the key and the reservation to
	// settle when the response ends.
	Ticket admission.Ticket

	// The small fields sit together: the struct is allocated per request,
	// and scattered, each would cost a word of padding.

	// Endpoint is the operation, in the client's format until the
	// ingress stage translates the body to the canonical shape (then
	// EndpointChat).
	Endpoint provider.Endpoint
	// Count: a token-count request, answered without going upstream.
	Count bool
	// Canonical: the ingress translated the body to OpenAI's shape, so the
	// response is translated back ([ingress.Adapter.Response]).
	Canonical bool
	// Filled by the parse stage.
	Stream       bool
	IncludeUsage bool
	// Conversation: the Responses API's "conversation", a reference to
	// stored state, was sent (not null).
	Conversation bool
	// ItemReference: "input" has an item_reference item.
	ItemReference bool
	// StoreOff: the client sent "store": false.
	StoreOff bool
	// Filled by the stored-responses stage. SealIDs: the response's ids
	// are bound to the key before the client sees them. Rewritten: Body
	// is no longer the client's (an id was unsealed in it, or the ingress
	// translated it).
	SealIDs   bool
	Rewritten bool
	// Routed: the request passed every request stage and went upstream;
	// its reservation is settled when the response ends.
	Routed bool
}

// Auth authenticates the virtual key and applies the key's own rules
// (blocked, expiry, allowed models). A key's alias may rename the model,
// so it runs before Route.
type Auth struct{ Gate *admission.Gate }

func (Auth) Name() string { return "auth" }

func (a Auth) Request(_ context.Context, r *Request) error {
	p := r.Runtime.Policy
	if a.Gate == nil || p == nil || !p.Active(a.Gate) {
		return nil
	}
	k, model, err := a.Gate.Authenticate(p, r.Authorization, r.APIKey, r.Path, r.Model)
	if err != nil {
		// A refused key is kept for the refusal's log line only; nothing
		// is reserved for it.
		r.Ticket.Key = k
		return err
	}
	r.Ticket.Key, r.Model = k, model
	return nil
}

// Admit reserves the request's estimate on every applicable budget and
// rate limit, all or nothing, in one store call.
type Admit struct{ Gate *admission.Gate }

func (Admit) Name() string { return "admit" }

func (a Admit) Request(ctx context.Context, r *Request) error {
	p := r.Runtime.Policy
	if a.Gate == nil || p == nil {
		return nil
	}
	ar := &admission.Request{
		ID: r.ReservationID,
		// The Envoy route's timeout for this backend bounds the request,
		// so its reservation lives that long, plus a grace period.
		Timeout: r.Backend.Config.EffectiveTimeout(),
		Body:    r.Body,
		// The endpoint's own reply limit (Parse reads it per endpoint).
		Completion: r.MaxOutput,
		// Per-model limits follow the resolved model, not the client's
		// spelling (an alias or a wildcard name).
		Model:    cmp.Or(r.Target.LimitName(), r.Model),
		Provider: string(r.Backend.Config.Provider),
		Upstream: r.Target.UpstreamModel,
		Session:  r.Session,
	}
	// Every routed request is priced, for its spend record and cost
	// header, even when nothing limits it.
	a.Gate.Price(p, &r.Ticket, r.Backend.Config.Name, ar)
	if !p.Active(a.Gate) {
		return nil
	}
	return a.Gate.Reserve(ctx, p, &r.Ticket, ar)
}

// ResponseHeaders replaces the provider's x-ratelimit-* headers, which
// describe Weir's upstream account, with the key's own limits.
func (Admit) ResponseHeaders(_ context.Context, r *Request, resp *Response) {
	for _, x := range r.Ticket.RateHeaders() {
		resp.SetHeader(x.Key, x.Value)
	}
}

// MaxOutputTokens bounds a request's reply limit: see
// [provider.MaxOutputTokens]. A model's context window bounds it further.
const MaxOutputTokens = provider.MaxOutputTokens

// Parse checks the body and reads the fields routing needs, with gjson
// only: the body is never unmarshalled.
//
// A body with a duplicate top-level key (or a duplicate key inside
// stream_options) is refused: readers disagree on which value wins (gjson's
// Get takes the first, most providers the last), so Weir could authorise,
// price or meter a value the provider does not use.
//
// The reply limit is the endpoint's own field: max_completion_tokens, else
// max_tokens, for chat; max_tokens for completions; max_output_tokens for
// responses; max_tokens for Anthropic Messages. A limit above
// [MaxOutputTokens] is refused.
type Parse struct{}

func (Parse) Name() string { return "parse" }

func (Parse) Request(_ context.Context, r *Request) error {
	if int64(len(r.Body)) > r.Runtime.MaxBody {
		return fmt.Errorf("%w: %d bytes exceeds the limit of %d", errs.ErrBodyTooLarge, len(r.Body), r.Runtime.MaxBody)
	}
	if ct := r.ContentType; ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return fmt.Errorf("%w: content-type must be application/json, got %q", errs.ErrInvalidRequest, ct)
	}
	if len(r.Body) == 0 {
		return fmt.Errorf("%w: empty body", errs.ErrInvalidJSON)
	}
	if !gjson.ValidBytes(r.Body) {
		return errs.ErrInvalidJSON
	}
	// A view, not gjson.ParseBytes, which copies the whole body into a
	// string on every request. Results point into the body, which nothing
	// modifies; strings that outlive the request are cloned below.
	root := gjson.Parse(jsonw.View(r.Body))
	if !root.IsObject() {
		return fmt.Errorf("%w: body must be a JSON object", errs.ErrInvalidRequest)
	}
	// One pass over the top level for the fields we need, noting every
	// key to find duplicates.
	var model, stream, opts, messages, maxCompletion, maxTokens, maxOutput, prevID, conv, input, store gjson.Result
	var seen jsonw.Keys
	dup := ""
	root.ForEach(func(k, v gjson.Result) bool {
		if seen.Add(k.Str) {
			dup = k.Str
			return false
		}
		switch k.Str {
		case "model":
			model = v
		case "stream":
			stream = v
		case "stream_options":
			opts = v
		case "messages":
			messages = v
		case "max_completion_tokens":
			maxCompletion = v
		case "max_tokens":
			maxTokens = v
		case "max_output_tokens":
			maxOutput = v
		case "previous_response_id":
			prevID = v
		case "store":
			store = v
		case "conversation":
			conv = v
		case "input":
			input = v
		}
		return true
	})
	if dup != "" {
		return errs.Refuse(errs.RuleRequestDuplicateKey, fmt.Errorf("%w: duplicate key %q in the request body", errs.ErrInvalidRequest, dup))
	}
	if opts.IsObject() {
		if d, ok := jsonw.DuplicateKey(opts); ok {
			return errs.Refuse(errs.RuleRequestDuplicateKey, fmt.Errorf("%w: duplicate key %q in 'stream_options'", errs.ErrInvalidRequest, d))
		}
	}
	var err error
	switch r.Endpoint {
	case provider.EndpointChat:
		// max_completion_tokens replaced max_tokens; translators prefer
		// it. Both are bounded, as both may be forwarded.
		var mc, mt int64
		if mc, err = outputLimit(maxCompletion, "max_completion_tokens"); err != nil {
			return err
		}
		if mt, err = outputLimit(maxTokens, "max_tokens"); err != nil {
			return err
		}
		r.MaxOutput = cmp.Or(mc, mt)
	case provider.EndpointCompletions, provider.EndpointMessages:
		r.MaxOutput, err = outputLimit(maxTokens, "max_tokens")
	case provider.EndpointResponses:
		r.MaxOutput, err = outputLimit(maxOutput, "max_output_tokens")
		switch prevID.Type {
		case gjson.Null:
		case gjson.String:
			r.PreviousResponseID = strings.Clone(prevID.Str)
		default:
			err = fmt.Errorf("%w: 'previous_response_id' must be a string", errs.ErrInvalidRequest)
		}
		r.Conversation = conv.Exists() && conv.Type != gjson.Null
		// Absent means true: the provider stores every response unless told
		// not to.
		r.StoreOff = store.Type == gjson.False
		if input.IsArray() {
			input.ForEach(func(_, item gjson.Result) bool {
				r.ItemReference = item.Get("type").Str == "item_reference"
				return !r.ItemReference
			})
		}
	}
	if err != nil {
		return err
	}
	if model.Type != gjson.String || model.Str == "" {
		return fmt.Errorf("%w: 'model' is required and must be a string", errs.ErrInvalidRequest)
	}
	// Model names become metric label keys and cache keys: clone so they
	// do not pin the request body in memory.
	m := strings.Clone(model.Str)
	r.Model, r.BodyModel = m, m
	switch stream.Type {
	case gjson.Null, gjson.True, gjson.False:
		r.Stream = stream.Type == gjson.True
	default:
		return fmt.Errorf("%w: 'stream' must be a boolean", errs.ErrInvalidRequest)
	}
	if r.Stream && r.Endpoint == provider.EndpointEmbeddings {
		return fmt.Errorf("%w: embeddings cannot stream", errs.ErrInvalidRequest)
	}
	r.IncludeUsage = opts.Get("include_usage").Type == gjson.True
	if r.Endpoint == provider.EndpointChat || r.Endpoint == provider.EndpointMessages {
		// Get("0") avoids materialising the array of a long conversation.
		if !messages.IsArray() || !messages.Get("0").Exists() {
			return fmt.Errorf("%w: 'messages' must be a non-empty array", errs.ErrInvalidRequest)
		}
	}
	return nil
}

// Route resolves the model to a backend.
type Route struct{}

func (Route) Name() string { return "route" }

func (Route) Request(_ context.Context, r *Request) error {
	t, ok := r.Runtime.Routes.Resolve(r.Model)
	if !ok {
		return fmt.Errorf("%w: the model %q does not exist or you do not have access to it", errs.ErrModelNotFound, r.Model)
	}
	b := r.Runtime.Backends[t.Backends[0]]
	if b == nil {
		return fmt.Errorf("route: backend %q of model %q is not compiled", t.Backends[0], t.Model.Name)
	}
	r.Target, r.Backend = t, b
	return nil
}

// StoredResponses guards the Responses API's references to state stored
// in the provider account, which every key shares. "conversation" is
// refused: Weir does not serve the Conversations API, so a conversation
// id never came from Weir and may be anyone's. So is an item_reference in
// "input": item ids are not bound to keys. previous_response_id is
// refused unless the model enables stored_responses; then it must be an
// id Weir issued to the same key ([storedid]), which is unsealed to the
// provider's id, and the response's own ids are sealed for the client
// (SealIDs). A foreign, forged or unknown id is the same 404. Without
// stored_responses the provider is told not to store ("store": false).
type StoredResponses struct{}

func (StoredResponses) Name() string { return "stored_responses" }

func (StoredResponses) Request(_ context.Context, r *Request) error {
	if r.Endpoint != provider.EndpointResponses {
		return nil
	}
	if r.Conversation {
		return errs.Refuse(errs.RuleResponsesStoredState, fmt.Errorf("%w: 'conversation' is not supported: conversations are stored in the provider account every key of this gateway shares, and Weir cannot tell whose one is; send the conversation's items in 'input' instead", errs.ErrInvalidRequest))
	}
	if r.ItemReference {
		return errs.Refuse(errs.RuleResponsesStoredState, fmt.Errorf("%w: 'item_reference' input items are not supported: they name items stored in the provider account every key of this gateway shares, and Weir cannot tell whose one is; send the item itself instead", errs.ErrInvalidRequest))
	}
	sealer := r.Runtime.StoredIDs
	r.SealIDs = sealer != nil && r.Target.Model != nil && r.Target.Model.StoredResponses
	if !r.SealIDs && r.PreviousResponseID == "" {
		if r.StoreOff {
			return nil
		}
		// Stored responses are off for this model, so nothing is stored:
		// the provider would otherwise keep the response, and its items,
		// under ids that any key of the gateway could name (item ids in
		// "input" are not bound to keys), in an account every key shares.
		body, err := sjson.SetBytes(bytes.Clone(r.Body), "store", false)
		if err != nil {
			return fmt.Errorf("%w: %w", errs.ErrInvalidRequest, err)
		}
		r.Body, r.Rewritten = body, true
		return nil
	}
	if r.PreviousResponseID == "" {
		return nil
	}
	if !r.SealIDs {
		return errs.Refuse(errs.RuleResponsesStoredState, fmt.Errorf("%w: 'previous_response_id' is not enabled for model %q: stored responses live in the provider account every key of this gateway shares; send the earlier turns in 'input' instead, or ask the operator to enable stored_responses for the model", errs.ErrInvalidRequest, r.Model))
	}
	id, ok := sealer.Open(r.StoredIDOwner(), r.PreviousResponseID)
	if !ok {
		return errs.Refuse(errs.RuleResponsesUnknownID, fmt.Errorf("%w: no response with id '%s'", errs.ErrResponseNotFound, r.PreviousResponseID))
	}
	// Parse refused duplicate keys, so the one field is the one rewritten.
	body, err := sjson.SetBytes(bytes.Clone(r.Body), "previous_response_id", id)
	if err != nil {
		return fmt.Errorf("%w: %w", errs.ErrInvalidRequest, err)
	}
	r.Body, r.Rewritten = body, true
	return nil
}

// StoredIDOwner is who the request's stored ids belong to: its key, or
// the anonymous owner without one.
func (r *Request) StoredIDOwner() storedid.Owner {
	if k := r.Ticket.Key; k != nil {
		return storedid.Owner(k.Hash)
	}
	return storedid.Owner{}
}

// ContextWindow refuses a request that cannot fit the model's configured
// context window. Exact BPE counting costs ~100 µs per KB, so it runs only
// when the cheap bound (every token covers at least one byte of the body)
// says the request might not fit: small requests never pay for it.
type ContextWindow struct {
	// Tokenize counts a chat body's prompt tokens for the upstream model;
	// nil is the model's BPE ([tokens.ForModel]). Tests count calls.
	Tokenize func(model string, body []byte) (int, error)
}

func (ContextWindow) Name() string { return "context_window" }

func (c ContextWindow) Request(_ context.Context, r *Request) error {
	m := r.Target.Model
	if m == nil || m.ContextWindow <= 0 {
		return nil
	}
	completion := r.MaxOutput
	if completion > m.ContextWindow {
		// Never fits, whatever the prompt: refused on every endpoint.
		return errs.Refuse(errs.RuleModelContextLength, fmt.Errorf("%w: this model's maximum context length is %d tokens, but the request asks for %d output tokens", errs.ErrContextLength, m.ContextWindow, completion))
	}
	if r.Endpoint != provider.EndpointChat && r.Endpoint != provider.EndpointMessages {
		return nil
	}
	if int64(len(r.Body))+completion <= m.ContextWindow {
		return nil
	}
	count := c.Tokenize
	if count == nil {
		count = bpeCount
	}
	n, err := count(r.Target.UpstreamModel, r.Body)
	if err != nil {
		return err
	}
	if int64(n)+completion > m.ContextWindow {
		return errs.Refuse(errs.RuleModelContextLength, fmt.Errorf("%w: this model's maximum context length is %d tokens, but the messages use %d and max_tokens asks for %d", errs.ErrContextLength, m.ContextWindow, n, completion))
	}
	return nil
}

func bpeCount(model string, body []byte) (int, error) { return tokens.ForModel(model).Count(body) }

// outputLimit is a reply-limit field's integer value if it is a positive
// number, else 0 (the configured estimate applies; the provider judges
// other types). A number above MaxOutputTokens is refused: compared as a
// float, so 1e30 and 2^63 are caught before any integer conversion.
func outputLimit(v gjson.Result, name string) (int64, error) {
	if v.Type != gjson.Number {
		return 0, nil
	}
	if v.Num > MaxOutputTokens {
		return 0, errs.Refuse(errs.RuleRequestReplyLimit, fmt.Errorf("%w: '%s' of %s exceeds the largest reply any model gives (%d tokens)", errs.ErrInvalidRequest, name, v.Raw, MaxOutputTokens))
	}
	if n := v.Int(); n > 0 {
		return n, nil
	}
	return 0, nil
}

// NewID returns a fresh random request id: 16 bytes from crypto/rand, in
// hex. It takes no lock, and two ids collide with probability 2^-128 per
// pair, so a reservation or spend record keyed on it cannot be reused by
// a client.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
