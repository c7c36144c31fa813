package anthropic

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
	pa "github.com/weir-ai/weir/extproc/provider/anthropic"
)

// TestRoundTrip sends Messages requests through this ingress and back out
// through the Anthropic provider translator (Messages → OpenAI → Messages)
// and checks that the result means the same: system, messages, text,
// images, tool use and results, tools, tool_choice and sampling settings.
// The normalisation below undoes only what the package documents as
// dropped or reshaped.
func TestRoundTrip(t *testing.T) {
	back, err := pa.New(&config.Backend{Name: "claude", Provider: "anthropic"})
	if err != nil {
		t.Fatal(err)
	}
	tr := New(nil)
	for _, in := range inputs(t, "request", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		if strings.HasPrefix(name, "err_") || name == "tool_result_error" {
			continue // errors have no round trip; is_error is noted in text
		}
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			oa, model, stream, err := tr.Request(body)
			if err != nil {
				t.Fatal(err)
			}
			up, err := back.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: oa, Model: model, ClientModel: model, Stream: stream})
			if err != nil {
				t.Fatalf("%v\nOpenAI body: %s", err, oa)
			}
			want, got := normaliseMessages(t, body), normaliseMessages(t, up.Body)
			if !reflect.DeepEqual(want, got) {
				w, _ := json.MarshalIndent(want, "", "  ")
				g, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("round trip differs\n--- want\n%s\n--- got\n%s\n--- OpenAI body\n%s", w, g, oa)
			}
		})
	}
}

// TestRoundTripDetectsLoss checks the comparison itself: is_error has no
// OpenAI field and is noted in the text, so that case must differ.
func TestRoundTripDetectsLoss(t *testing.T) {
	back, err := pa.New(&config.Backend{Name: "claude", Provider: "anthropic"})
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("testdata/request/tool_result_error.in.json")
	if err != nil {
		t.Fatal(err)
	}
	oa, model, _, err := New(nil).Request(body)
	if err != nil {
		t.Fatal(err)
	}
	up, err := back.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: oa, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(normaliseMessages(t, body), normaliseMessages(t, up.Body)) {
		t.Error("a lossy round trip compared equal")
	}
}

// normaliseMessages decodes a Messages request into a comparable form.
func normaliseMessages(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	// Dropped by the ingress, documented.
	for _, k := range []string{"top_k", "thinking", "service_tier"} {
		delete(r, k)
	}
	if r["stream"] == false {
		delete(r, "stream")
	}
	// system: string or blocks → list of texts.
	switch s := r["system"].(type) {
	case string:
		r["system"] = []any{s}
	case []any:
		var texts []any
		for _, b := range s {
			texts = append(texts, b.(map[string]any)["text"])
		}
		r["system"] = texts
	}
	// messages: content as blocks, consecutive roles merged, assistant text
	// before tool_use.
	var msgs []any
	lastRole := ""
	for _, m := range r["messages"].([]any) {
		mm := m.(map[string]any)
		role := mm["role"].(string)
		blocks := normaliseBlocks(mm["content"])
		if role == "assistant" {
			var text, tools []any
			for _, b := range blocks {
				if b.(map[string]any)["type"] == "tool_use" {
					tools = append(tools, b)
				} else {
					text = append(text, b)
				}
			}
			blocks = append(text, tools...)
		}
		if role == lastRole {
			prev := msgs[len(msgs)-1].(map[string]any)
			prev["content"] = append(prev["content"].([]any), blocks...)
			continue
		}
		lastRole = role
		msgs = append(msgs, map[string]any{"role": role, "content": blocks})
	}
	r["messages"] = msgs
	if tools, ok := r["tools"].([]any); ok {
		for _, tool := range tools {
			tm := tool.(map[string]any)
			delete(tm, "cache_control")
			if tm["type"] == "custom" {
				delete(tm, "type")
			}
		}
	}
	if tc, ok := r["tool_choice"].(map[string]any); ok && tc["disable_parallel_tool_use"] == false {
		delete(tc, "disable_parallel_tool_use")
	}
	return r
}

func normaliseBlocks(c any) []any {
	if s, ok := c.(string); ok {
		return []any{map[string]any{"type": "text", "text": s}}
	}
	var out []any
	for _, b := range c.([]any) {
		bm := b.(map[string]any)
		delete(bm, "cache_control")
		delete(bm, "citations")
		switch bm["type"] {
		case "thinking", "redacted_thinking":
			continue
		case "document":
			delete(bm, "title")
			if src := bm["source"].(map[string]any); src["type"] == "text" {
				bm = map[string]any{"type": "text", "text": src["data"]}
			}
		case "tool_result":
			if c, ok := bm["content"]; ok {
				bm["content"] = normaliseBlocks(c)
			}
		}
		out = append(out, bm)
	}
	return out
}
