package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/ingress"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/route"
	"github.com/weir-ai/weir/extproc/runtime"
)

// fakeTranslator serves EndpointMessages natively for the model "native".
type fakeTranslator struct{ provider.Translator }

func (fakeTranslator) Serves(e provider.Endpoint, model string) bool {
	return e == provider.EndpointMessages && model == "native"
}

// plainTranslator serves only the canonical shape.
type plainTranslator struct{ provider.Translator }

// fakeIngress translates to a fixed canonical body, and counts tokens
// when count is set.
type fakeIngress struct {
	ingress.Adapter
	err error
}

func (f fakeIngress) Canonical([]byte) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []byte(`{"canonical":true}`), nil
}

type countingIngress struct{ fakeIngress }

func (countingIngress) CountTokens([]byte) ([]byte, error) { return []byte(`{"input_tokens":3}`), nil }

func TestIngressStage(t *testing.T) {
	bad := errors.New("bad block")
	tests := []struct {
		name       string
		endpoint   provider.Endpoint
		translator provider.Translator
		model      string
		ing        fakeIngress
		stream     bool
		wantBody   string
		wantEP     provider.Endpoint
		canonical  bool
		wantErr    error
	}{
		{"openai endpoints pass", provider.EndpointChat, plainTranslator{}, "m", fakeIngress{}, false, `{"client":1}`, provider.EndpointChat, false, nil},
		{"responses pass", provider.EndpointResponses, fakeTranslator{}, "native", fakeIngress{}, false, `{"client":1}`, provider.EndpointResponses, false, nil},
		{"native backend keeps the client's format", provider.EndpointMessages, fakeTranslator{}, "native", fakeIngress{}, true, `{"client":1}`, provider.EndpointMessages, false, nil},
		{"native translator, other model: canonical", provider.EndpointMessages, fakeTranslator{}, "other", fakeIngress{}, true, `{"canonical":true}`, provider.EndpointChat, true, nil},
		{"plain translator: canonical", provider.EndpointMessages, plainTranslator{}, "m", fakeIngress{}, false, `{"canonical":true}`, provider.EndpointChat, true, nil},
		{"translation error", provider.EndpointMessages, plainTranslator{}, "m", fakeIngress{err: bad}, false, "", 0, false, bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{
				Ingress: tt.ing, Endpoint: tt.endpoint, Body: []byte(`{"client":1}`), Stream: tt.stream,
				Target:  route.Target{UpstreamModel: tt.model},
				Backend: &runtime.Backend{Translator: tt.translator},
			}
			err := Ingress{}.Request(context.Background(), r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Body) != tt.wantBody || r.Endpoint != tt.wantEP || r.Canonical != tt.canonical || r.Rewritten != tt.canonical {
				t.Errorf("body %s endpoint %v canonical %v rewritten %v", r.Body, r.Endpoint, r.Canonical, r.Rewritten)
			}
			// A canonical stream asks for usage, which the ingress's
			// stream needs for its final event.
			if tt.canonical && r.IncludeUsage != tt.stream {
				t.Errorf("IncludeUsage = %v, want %v", r.IncludeUsage, tt.stream)
			}
		})
	}
}

func TestCountTokensStage(t *testing.T) {
	tests := []struct {
		name       string
		count      bool
		ing        ingress.Adapter
		wantAnswer string
		wantErr    error
	}{
		{"not a count", false, countingIngress{}, "", nil},
		{"a count is answered", true, countingIngress{}, `{"input_tokens":3}`, nil},
		{"an ingress that cannot count", true, fakeIngress{}, "", errs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Runtime: &runtime.Runtime{}, Ingress: tt.ing, Count: tt.count, Path: "/v1/messages/count_tokens"}
			err := CountTokens{}.Request(context.Background(), r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			got := ""
			if r.Answer != nil {
				if r.Answer.Status != 200 {
					t.Errorf("status %d", r.Answer.Status)
				}
				got = string(r.Answer.Body)
			}
			if got != tt.wantAnswer {
				t.Errorf("answer %q, want %q", got, tt.wantAnswer)
			}
		})
	}
}

// TestIngressBeta: the client's anthropic-beta reaches a native backend
// only when the backend forwards it, and never through the body.
func TestIngressBeta(t *testing.T) {
	tests := []struct {
		name     string
		forward  runtime.HeaderSet
		model    string
		body     string
		wantBeta string
		wantErr  bool
	}{
		{"forwarded", runtime.HeaderSet{"anthropic-beta": {}}, "native", `{"model":"m"}`, "context-1m-2025-08-07", false},
		{"not forwarded", runtime.HeaderSet{}, "native", `{"model":"m"}`, "", false},
		{"canonical carries no beta", runtime.HeaderSet{"anthropic-beta": {}}, "other", `{"model":"m"}`, "", false},
		{"a beta in the body is refused", runtime.HeaderSet{"anthropic-beta": {}}, "native", `{"model":"m","anthropic_beta":["context-1m-2025-08-07"]}`, "", true},
		{"a container is refused before admission", runtime.HeaderSet{}, "native", `{"model":"m","container":"container_1"}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{
				Ingress: fakeIngress{}, Endpoint: provider.EndpointMessages, Body: []byte(tt.body),
				AnthropicBeta: "context-1m-2025-08-07",
				Target:        route.Target{UpstreamModel: tt.model},
				Backend:       &runtime.Backend{Translator: fakeTranslator{}, Forward: tt.forward},
			}
			err := Ingress{}.Request(context.Background(), r)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errs.ErrInvalidRequest)) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && r.AnthropicBeta != tt.wantBeta {
				t.Errorf("beta %q, want %q", r.AnthropicBeta, tt.wantBeta)
			}
		})
	}
}
