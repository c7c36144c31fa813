package pipeline

import (
	"context"
	"unsafe"

	"github.com/weir-ai/weir/extproc/delivered"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
)

// Stage is one step of a request's life. What it does is which hooks it
// implements: [RequestStage] before the upstream call, then, on the
// response, [ResponseHeadersStage], [ResponseBodyStage] for the buffered
// body or each streamed chunk, and [EndStage] once the stream ends. A
// stage can answer a request itself (a count_tokens reply, a cache hit, a
// guardrail block) by setting [Request.Answer]; nothing goes upstream.
type Stage interface {
	Name() string
}

// RequestStage acts on the request. An error ends the request with an
// immediate response built from it in the client's format.
type RequestStage interface {
	Stage
	Request(ctx context.Context, r *Request) error
}

// ResponseHeadersStage acts on the response headers: it may add headers
// to the reply ([Response.SetHeader]).
type ResponseHeadersStage interface {
	Stage
	ResponseHeaders(ctx context.Context, r *Request, resp *Response)
}

// ResponseBodyStage sees the body the client is about to get, in the
// client's format: the whole body when buffered, each chunk when
// streamed. It returns the body to send instead (out itself when it
// changes nothing). An error replaces a buffered body with an error, and
// ends a stream with an error event. [Response.SetHeader] works for a
// buffered body, whose headers Envoy still holds.
type ResponseBodyStage interface {
	Stage
	ResponseBody(ctx context.Context, r *Request, resp *Response, out []byte) ([]byte, error)
}

// EndStage runs once when the request's stream ends, whatever happened:
// answered, refused, completed, cut or abandoned by the client.
type EndStage interface {
	Stage
	End(ctx context.Context, r *Request, resp *Response)
}

// Pipeline is the ordered list of stages, with each hook's stages listed
// once when it is built, so that no message pays for type assertions.
type Pipeline struct {
	stages []Stage
	req    []RequestStage
	hdr    []ResponseHeadersStage
	body   []ResponseBodyStage
	end    []EndStage
}

// New builds a pipeline; hooks run in the order of stages.
func New(stages ...Stage) *Pipeline {
	p := &Pipeline{stages: stages}
	for _, s := range stages {
		if h, ok := s.(RequestStage); ok {
			p.req = append(p.req, h)
		}
		if h, ok := s.(ResponseHeadersStage); ok {
			p.hdr = append(p.hdr, h)
		}
		if h, ok := s.(ResponseBodyStage); ok {
			p.body = append(p.body, h)
		}
		if h, ok := s.(EndStage); ok {
			p.end = append(p.end, h)
		}
	}
	return p
}

// Stages returns the stages in order; the slice is shared.
func (p *Pipeline) Stages() []Stage { return p.stages }

// Run runs the request hooks until one fails or answers.
func (p *Pipeline) Run(ctx context.Context, r *Request) error {
	for _, s := range p.req {
		if err := s.Request(ctx, r); err != nil {
			return err
		}
		if r.Answer != nil {
			return nil
		}
	}
	return nil
}

// ResponseHeaders runs the response-headers hooks.
func (p *Pipeline) ResponseHeaders(ctx context.Context, r *Request, resp *Response) {
	for _, s := range p.hdr {
		s.ResponseHeaders(ctx, r, resp)
	}
}

// ResponseBody runs the body hooks over out, each seeing the previous
// one's result, until one fails.
func (p *Pipeline) ResponseBody(ctx context.Context, r *Request, resp *Response, out []byte) ([]byte, error) {
	for _, s := range p.body {
		var err error
		if out, err = s.ResponseBody(ctx, r, resp, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// End runs the end hooks.
func (p *Pipeline) End(ctx context.Context, r *Request, resp *Response) {
	for _, s := range p.end {
		s.End(ctx, r, resp)
	}
}

// Answer is a reply a stage gives itself, instead of the provider's.
type Answer struct {
	Status int
	Body   []byte // JSON
	// Details names the answer in Envoy's access log
	// (%RESPONSE_CODE_DETAILS%).
	Details string
}

// Response is what the router knows of the response, shared by the
// response-side hooks.
type Response struct {
	// Served is the backend that answered: the routed one, or another
	// that Envoy chose for a retry. nil when nothing was routed.
	Served *runtime.Backend
	// Usage is the provider's usage as observed so far.
	Usage provider.Usage
	// Err is why the request failed, if it did.
	Err error
	// Delivered follows a stream's text as the client received it, for
	// billing a stream that ends without the provider's usage. Set by
	// the accounting stage.
	Delivered *delivered.Text
	// Body keeps the body the client got, for the access log, when it
	// logs bodies.
	Body []byte

	headers []provider.Header

	// Status is the status the client gets (the provider's, or Weir's
	// when Weir replaced it).
	Status int
	// Stream: the body is translated chunk by chunk.
	Stream bool
	// Done: the response's last message was seen. A stream that ends
	// without it was abandoned or cut.
	Done bool
}

// SetHeader sets a header on the reply to the message being handled.
func (r *Response) SetHeader(k, v string) {
	r.headers = append(r.headers, provider.Header{Key: k, Value: v})
}

// TakeHeaders returns the headers set since the last call, and forgets
// them.
func (r *Response) TakeHeaders() []provider.Header {
	h := r.headers
	r.headers = nil
	return h
}

// Same reports whether a and b are the same bytes in memory: a body hook
// that returns its input changed nothing, and comparing contents would
// cost a pass over every chunk.
func Same(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}
