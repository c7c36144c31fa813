package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/runtime"
	"github.com/weir-ai/weir/extproc/tokens"
	"github.com/weir-ai/weir/extproc/vkey"
)

// stagesConfig has two models, an alias, and keys: KEY may send
// gpt-4o-mini and calls it "fast"; RPM allows one request a minute.
const stagesConfig = `
version: weir.dev/v1alpha1
backends:
  - {name: oai, provider: openai, base_url: "https://api.openai.example/v1", credential: {value: sk-upstream}}
  - {name: ant, provider: anthropic, base_url: "https://api.anthropic.example", credential: {value: sk-ant}}
models:
  - {name: gpt-4o-mini, aliases: [mini], backends: [oai]}
  - {name: claude, provider_model: claude-sonnet-4-5, backends: [ant]}
auth:
  keys:
    - {hash: KEY, models: [gpt-4o-mini], aliases: {fast: gpt-4o-mini}}
    - {hash: RPM, rpm_limit: 1}
`

type stagesFixture struct {
	rt       *runtime.Runtime
	gate     *admission.Gate
	key, rpm vkey.Secret
}

func newStagesFixture(t *testing.T) *stagesFixture {
	t.Helper()
	key, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	rpm, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(strings.NewReplacer("KEY", key.Hash().String(), "RPM", rpm.Hash().String()).Replace(stagesConfig))
	cfg, err := config.Parse(raw, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.Compile(cfg, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Release)
	g := &admission.Gate{Keys: vkey.NewKeyring(), Tokens: tokens.Media{}, Store: limits.NewMemory(nil)}
	g.SetKeys(rt.Policy.ConfigKeys)
	return &stagesFixture{rt: rt, gate: g, key: key, rpm: rpm}
}

func (f *stagesFixture) request(model, auth string) *Request {
	return &Request{
		Runtime: f.rt, Path: "/v1/chat/completions", Endpoint: provider.EndpointChat, ReservationID: NewID(),
		Authorization: auth, Model: model, BodyModel: model,
		Body: []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`),
	}
}

func TestAuthStage(t *testing.T) {
	f := newStagesFixture(t)
	tests := []struct {
		name, model, auth string
		wantModel         string
		wantErr           error
	}{
		{"a key's alias renames the model", "fast", "Bearer " + f.key.Reveal(), "gpt-4o-mini", nil},
		{"an allowed model", "gpt-4o-mini", "Bearer " + f.key.Reveal(), "gpt-4o-mini", nil},
		{"a model the key may not send", "claude", "Bearer " + f.key.Reveal(), "", errs.ErrForbidden},
		{"no key", "gpt-4o-mini", "", "", errs.ErrUnauthorized},
		{"an unknown key", "gpt-4o-mini", "Bearer sk-weir-unknown", "", errs.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.request(tt.model, tt.auth)
			err := Auth{Gate: f.gate}.Request(context.Background(), r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Model != tt.wantModel || r.Ticket.Key == nil {
				t.Errorf("model %q key %v; want %q and the key", r.Model, r.Ticket.Key, tt.wantModel)
			}
		})
	}
}

func TestRouteStage(t *testing.T) {
	f := newStagesFixture(t)
	tests := []struct {
		model, wantBackend, wantUpstream string
	}{
		{"gpt-4o-mini", "oai", "gpt-4o-mini"},
		{"mini", "oai", "gpt-4o-mini"},
		{"claude", "ant", "claude-sonnet-4-5"},
		{"nope", "", ""},
	}
	for _, tt := range tests {
		r := f.request(tt.model, "")
		err := Route{}.Request(context.Background(), r)
		if tt.wantBackend == "" {
			if !errors.Is(err, errs.ErrModelNotFound) {
				t.Errorf("%s: err = %v, want model not found", tt.model, err)
			}
			continue
		}
		if err != nil || r.Backend.Config.Name != tt.wantBackend || r.Target.UpstreamModel != tt.wantUpstream {
			t.Errorf("%s: %v, backend %v upstream %q", tt.model, err, r.Backend, r.Target.UpstreamModel)
		}
	}
}

// TestAdmitStage: the key's RPM admits one request, whose response then
// carries the key's own x-ratelimit-* headers, and refuses the next.
func TestAdmitStage(t *testing.T) {
	f := newStagesFixture(t)
	ctx := context.Background()
	admit := Admit{Gate: f.gate}
	var statuses []string
	for i := range 2 {
		r := f.request("gpt-4o-mini", "Bearer "+f.rpm.Reveal())
		for _, s := range []RequestStage{Auth{Gate: f.gate}, Route{}} {
			if err := s.Request(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		err := admit.Request(ctx, r)
		if err != nil {
			statuses = append(statuses, fmt.Sprint(errs.Status(err)))
			continue
		}
		statuses = append(statuses, "admitted")
		if !r.Ticket.Priced && !r.Ticket.Reserved {
			t.Errorf("request %d: nothing reserved", i)
		}
		resp := &Response{}
		admit.ResponseHeaders(ctx, r, resp)
		got := map[string]string{}
		for _, h := range resp.TakeHeaders() {
			got[h.Key] = h.Value
		}
		if got["x-ratelimit-limit-requests"] != "1" || got["x-ratelimit-remaining-requests"] != "0" {
			t.Errorf("rate headers %v", got)
		}
	}
	if strings.Join(statuses, ",") != "admitted,429" {
		t.Errorf("statuses %v, want admitted then 429", statuses)
	}
}

func TestStoredResponsesStage(t *testing.T) {
	f := newStagesFixture(t)
	tests := []struct {
		name      string
		endpoint  provider.Endpoint
		body      string
		wantStore string // the body's "store" after the stage ("" when untouched)
		wantRule  errs.Rule
	}{
		{"chat is not touched", provider.EndpointChat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "", ""},
		{"the provider is told not to store", provider.EndpointResponses, `{"model":"gpt-4o-mini","input":"hi"}`, "false", ""},
		{"store:false stays", provider.EndpointResponses, `{"model":"gpt-4o-mini","input":"hi","store":false}`, "", ""},
		{"a conversation is refused", provider.EndpointResponses, `{"model":"gpt-4o-mini","input":"hi","conversation":"conv_1"}`, "", errs.RuleResponsesStoredState},
		{"an item_reference is refused", provider.EndpointResponses, `{"model":"gpt-4o-mini","input":[{"type":"item_reference","id":"msg_1"}]}`, "", errs.RuleResponsesStoredState},
		{"previous_response_id without stored_responses", provider.EndpointResponses, `{"model":"gpt-4o-mini","input":"hi","previous_response_id":"resp_1"}`, "", errs.RuleResponsesStoredState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.request("gpt-4o-mini", "")
			r.Endpoint, r.Body = tt.endpoint, []byte(tt.body)
			ctx := context.Background()
			for _, s := range []RequestStage{Parse{}, Route{}} {
				if err := s.Request(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			err := StoredResponses{}.Request(ctx, r)
			if tt.wantRule != "" {
				if errs.RuleOf(err) != tt.wantRule {
					t.Fatalf("err = %v, want rule %s", err, tt.wantRule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			store := gjson.GetBytes(r.Body, "store")
			if tt.wantStore != "" && (store.Raw != tt.wantStore || !r.Rewritten) {
				t.Errorf("store %s rewritten %v, want %s", store.Raw, r.Rewritten, tt.wantStore)
			}
			if tt.wantStore == "" && r.Rewritten {
				t.Errorf("body rewritten: %s", r.Body)
			}
		})
	}
}
