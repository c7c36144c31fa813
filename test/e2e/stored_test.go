package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/vkey"
)

// TestStoredResponsesAreTenantScoped: with stored_responses on, the
// response ids a key receives (buffered and in every stream event) are
// bound to it: the key continues from them on either of two replicas
// that share the secret, and another key gets the 404 of an id that does
// not exist, without the provider being asked. Provider ids never reach
// clients and are not accepted from them. A model without
// stored_responses refuses previous_response_id.
func TestStoredResponsesAreTenantScoped(t *testing.T) {
	a, aHash := newKey(t)
	b, bHash := newKey(t)
	g := startGateway(t, limitsBase+fmt.Sprintf(`
  - {name: stateful, provider_model: gpt-4o-mini, backends: [oa], stored_responses: true}
responses: {id_secret: "test-secret-test-secret-test-secret"}
auth:
  keys:
    - {hash: %s}
    - {hash: %s}
`, aHash, bHash), 2)
	respond := func(key, model, extra string) (int, []byte) {
		t.Helper()
		resp, body := post(t, g.URL+"/v1/responses", `{"model":"`+model+`","input":"hello"`+extra+`}`,
			map[string]string{"authorization": "Bearer " + key})
		return resp.StatusCode, body
	}
	prev := func(id string) string { return `,"previous_response_id":"` + id + `"` }

	st, body := respond(a.Reveal(), "stateful", "")
	aID := gjson.GetBytes(body, "id").Str
	if st != 200 || !strings.HasPrefix(aID, "resp_fake") || !strings.Contains(aID, "_w") {
		t.Fatalf("first response: %d %s", st, body)
	}
	providerID, _, _ := strings.Cut(aID, "_w")

	// A stream's lifecycle events all carry the same sealed id.
	resp, sse := post(t, g.URL+"/v1/responses", `{"model":"stateful","input":"hello","stream":true}`,
		map[string]string{"authorization": "Bearer " + a.Reveal()})
	var streamIDs []string
	sc := bufio.NewScanner(bytes.NewReader(sse))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if id := gjson.Get(d, "response.id"); id.Exists() {
				streamIDs = append(streamIDs, id.Str)
			}
		}
	}
	if resp.StatusCode != 200 || len(streamIDs) < 3 || !strings.Contains(streamIDs[0], "_w") {
		t.Fatalf("stream: %d ids %v\n%s", resp.StatusCode, streamIDs, sse)
	}
	for _, id := range streamIDs {
		if id != streamIDs[0] {
			t.Fatalf("stream ids differ: %v", streamIDs)
		}
	}

	tests := []struct {
		name, key, model, id string
		want                 int
		code                 string
	}{
		// Twice each: consecutive requests go to alternate replicas.
		{"own id", a.Reveal(), "stateful", aID, 200, ""},
		{"own id, other replica", a.Reveal(), "stateful", aID, 200, ""},
		{"own streamed id", a.Reveal(), "stateful", streamIDs[0], 200, ""},
		{"own streamed id, other replica", a.Reveal(), "stateful", streamIDs[0], 200, ""},
		{"another key's id", b.Reveal(), "stateful", aID, 404, "previous_response_not_found"},
		{"another key's id, other replica", b.Reveal(), "stateful", aID, 404, "previous_response_not_found"},
		{"another key's streamed id", b.Reveal(), "stateful", streamIDs[0], 404, "previous_response_not_found"},
		{"the provider's id", a.Reveal(), "stateful", providerID, 404, "previous_response_not_found"},
		{"an id that never existed", b.Reveal(), "stateful", "resp_nope", 404, "previous_response_not_found"},
		{"a model without stored_responses", a.Reveal(), "gpt-4o-mini", aID, 400, "invalid_request"},
	}
	for _, tt := range tests {
		before := len(g.OpenAI.Requests())
		st, body := respond(tt.key, tt.model, prev(tt.id))
		if st != tt.want {
			t.Errorf("%s: status %d, want %d: %s", tt.name, st, tt.want, body)
			continue
		}
		reqs := g.OpenAI.Requests()
		if tt.want != 200 {
			if code := gjson.GetBytes(body, "error.code").Str; code != tt.code {
				t.Errorf("%s: code %q, want %q: %s", tt.name, code, tt.code, body)
			}
			if len(reqs) != before {
				t.Errorf("%s: a refused id reached the provider", tt.name)
			}
			continue
		}
		// The provider got its own id; the client gets its sealed one
		// back, and a new sealed id.
		wantUp, _, _ := strings.Cut(tt.id, "_w")
		if got := gjson.GetBytes(reqs[len(reqs)-1].Body, "previous_response_id").Str; got != wantUp {
			t.Errorf("%s: provider got previous_response_id %q, want %q", tt.name, got, wantUp)
		}
		if got := gjson.GetBytes(body, "previous_response_id").Str; got != tt.id {
			t.Errorf("%s: echoed previous_response_id %q, want %q", tt.name, got, tt.id)
		}
		if id := gjson.GetBytes(body, "id").Str; !strings.Contains(id, "_w") {
			t.Errorf("%s: new id %q is not sealed", tt.name, id)
		}
	}
	if strings.Contains(string(body), providerID+`"`) {
		t.Errorf("a provider id reached the client: %s", body)
	}

	// The official SDK takes sealed ids as they are, buffered and
	// streamed, and surfaces another key's as a 404.
	sdk := func(key vkey.Secret) *responses.ResponseService {
		c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(key.Reveal()), option.WithMaxRetries(0))
		return &c.Responses
	}
	ctx := context.Background()
	params := func(prev string) responses.ResponseNewParams {
		p := responses.ResponseNewParams{Model: "stateful", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")}}
		if prev != "" {
			p.PreviousResponseID = openai.String(prev)
		}
		return p
	}
	r1, err := sdk(a).New(ctx, params(""))
	if err != nil {
		t.Fatal(err)
	}
	stream := sdk(a).NewStreaming(ctx, params(r1.ID))
	var completed string
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			completed = ev.Response.ID
		}
	}
	if err := stream.Err(); err != nil || !strings.Contains(completed, "_w") {
		t.Fatalf("SDK stream from its own id: %v, completed id %q", err, completed)
	}
	if _, err := sdk(a).New(ctx, params(completed)); err != nil {
		t.Errorf("SDK continuing from its streamed id: %v", err)
	}
	var apiErr *openai.Error
	if _, err := sdk(b).New(ctx, params(completed)); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "previous_response_not_found" {
		t.Errorf("SDK with another key's id: %v", err)
	}
}
