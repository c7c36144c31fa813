package pipeline

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// hooks records every hook call as "<stage>.<hook>", and can fail or
// answer at the request, and change or fail a body.
type hooks struct {
	name        string
	log         *[]string
	failRequest bool
	answer      bool
	appendBody  string
	failBody    bool
}

type reqOnly struct{ h *hooks }

func (s reqOnly) Name() string { return s.h.name }
func (s reqOnly) Request(ctx context.Context, r *Request) error {
	return s.h.Request(ctx, r)
}

func (h *hooks) Name() string { return h.name }
func (h *hooks) Request(_ context.Context, r *Request) error {
	*h.log = append(*h.log, h.name+".request")
	if h.failRequest {
		return errors.New(h.name + " refused")
	}
	if h.answer {
		r.Answer = &Answer{Status: 200, Body: []byte(`{}`)}
	}
	return nil
}
func (h *hooks) ResponseHeaders(_ context.Context, _ *Request, resp *Response) {
	*h.log = append(*h.log, h.name+".headers")
	resp.SetHeader("x-"+h.name, "1")
}
func (h *hooks) ResponseBody(_ context.Context, _ *Request, _ *Response, out []byte) ([]byte, error) {
	*h.log = append(*h.log, h.name+".body")
	if h.failBody {
		return out, errors.New(h.name + " blocked")
	}
	if h.appendBody != "" {
		return append(slices.Clip(out), h.appendBody...), nil
	}
	return out, nil
}
func (h *hooks) End(_ context.Context, _ *Request, _ *Response) {
	*h.log = append(*h.log, h.name+".end")
}

func TestPipelineHooks(t *testing.T) {
	tests := []struct {
		name     string
		stages   func(log *[]string) []Stage
		wantRun  []string
		wantErr  bool
		answered bool
		wantBody string
		bodyErr  bool
		wantHdrs []string
	}{
		{
			name: "every hook in order",
			stages: func(log *[]string) []Stage {
				return []Stage{&hooks{name: "a", log: log}, reqOnly{&hooks{name: "b", log: log}}, &hooks{name: "c", log: log, appendBody: "!"}}
			},
			wantRun:  []string{"a.request", "b.request", "c.request", "a.headers", "c.headers", "a.body", "c.body", "a.end", "c.end"},
			wantBody: "body!",
			wantHdrs: []string{"x-a", "x-c"},
		},
		{
			name: "an error stops the request hooks",
			stages: func(log *[]string) []Stage {
				return []Stage{&hooks{name: "a", log: log, failRequest: true}, &hooks{name: "b", log: log}}
			},
			wantRun: []string{"a.request"},
			wantErr: true,
		},
		{
			name: "an answer stops the request hooks",
			stages: func(log *[]string) []Stage {
				return []Stage{&hooks{name: "a", log: log, answer: true}, &hooks{name: "b", log: log}}
			},
			wantRun:  []string{"a.request"},
			answered: true,
		},
		{
			name: "a body error stops the body hooks",
			stages: func(log *[]string) []Stage {
				return []Stage{&hooks{name: "a", log: log, failBody: true}, &hooks{name: "b", log: log, appendBody: "!"}}
			},
			wantRun:  []string{"a.request", "b.request", "a.headers", "b.headers", "a.body", "a.end", "b.end"},
			wantBody: "body",
			bodyErr:  true,
			wantHdrs: []string{"x-a", "x-b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			p := New(tt.stages(&log)...)
			ctx := context.Background()
			r := &Request{}
			err := p.Run(ctx, r)
			if (err != nil) != tt.wantErr || (r.Answer != nil) != tt.answered {
				t.Fatalf("Run: err %v, answer %v", err, r.Answer)
			}
			if err == nil && r.Answer == nil {
				resp := &Response{}
				p.ResponseHeaders(ctx, r, resp)
				var names []string
				for _, h := range resp.TakeHeaders() {
					names = append(names, h.Key)
				}
				if !slices.Equal(names, tt.wantHdrs) || resp.TakeHeaders() != nil {
					t.Errorf("headers %v, want %v once", names, tt.wantHdrs)
				}
				in := []byte("body")
				out, err := p.ResponseBody(ctx, r, resp, in)
				if string(out) != tt.wantBody || (err != nil) != tt.bodyErr {
					t.Errorf("body %q, %v; want %q, error %v", out, err, tt.wantBody, tt.bodyErr)
				}
				if Same(out, in) != (tt.wantBody == "body") {
					t.Errorf("Same(out, in) = %v", Same(out, in))
				}
				p.End(ctx, r, resp)
			}
			if !slices.Equal(log, tt.wantRun) {
				t.Errorf("ran %v\nwant %v", log, tt.wantRun)
			}
		})
	}
}

func TestSame(t *testing.T) {
	b := []byte("abc")
	c := append(make([]byte, 0, 3), b...)
	tests := []struct {
		a, b []byte
		want bool
	}{
		{b, b, true},
		{b, c, false},     // equal contents, other memory
		{b, b[:2], false}, // a prefix
		{nil, nil, true},
	}
	for i, tt := range tests {
		if got := Same(tt.a, tt.b); got != tt.want {
			t.Errorf("%d: Same = %v, want %v", i, got, tt.want)
		}
	}
}
