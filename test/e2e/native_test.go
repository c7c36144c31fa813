package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/test/devstack"
	"github.com/weir-ai/weir/test/fakeprovider"
)

// nativeConfig routes Claude through each Anthropic-family backend, which
// serve the Messages API natively, and one OpenAI model, which does not.
// The Anthropic backend forwards anthropic-beta; the others do not.
const nativeConfig = `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "${WEIR_FAKE_OPENAI_URL}/v1", credential: {value: sk-fake-openai}}
  - {name: an, provider: anthropic, base_url: "${WEIR_FAKE_ANTHROPIC_URL}", credential: {value: sk-ant-fake}, forward_headers: [anthropic-beta]}
  - {name: vx, provider: vertex, base_url: "${WEIR_FAKE_VERTEX_URL}", credential: {value: fake-vertex-access-token}, options: {project: weir-dev, location: us-central1}}
  - name: br
    provider: bedrock
    base_url: "${WEIR_FAKE_BEDROCK_URL}"
    aws: {region: us-east-1, access_key_id: AKIAFAKEFAKEFAKE, secret_access_key: fake-secret-access-key}
models:
  - {name: gpt-4o-mini, backends: [oa]}
  - {name: claude-sonnet-4-5, backends: [an]}
  - {name: vertex-claude-sonnet-4-5, backends: [vx], provider_model: "claude-sonnet-4-5@20250929"}
  - {name: bedrock-claude-sonnet-4-5, backends: [br], provider_model: "anthropic.claude-sonnet-4-5-20250929-v1:0"}
  - {name: bedrock-invoke-claude-sonnet-4-5, backends: [br], provider_model: "invoke:us.anthropic.claude-sonnet-4-5-20250929-v1:0"}
`

func startNativeStack(t *testing.T) *devstack.Stack {
	t.Helper()
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard,
		ConfigYAML: []byte(nativeConfig),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

// nativeBody uses what the OpenAI shape cannot carry: a cache_control
// breakpoint, extended thinking, top_k, a stop sequence the reply meets
// ("You said: please STOP ..." stops before STOP), and metadata.
func nativeBody(model, system string, stream bool) string {
	return fmt.Sprintf(`{"model":%q,"max_tokens":2048,"stream":%v,"top_k":5,"stop_sequences":["STOP"],`+
		`"thinking":{"type":"enabled","budget_tokens":1024},"metadata":{"user_id":"u-1"},`+
		`"system":[{"type":"text","text":%q,"cache_control":{"type":"ephemeral"}}],`+
		`"messages":[{"role":"user","content":"please STOP here"}]}`, model, stream, system)
}

// TestNativeMessagesPassthrough: an Anthropic client reaches Anthropic,
// Vertex rawPredict and Bedrock InvokeModel in Anthropic's own format,
// both ways. The provider receives the client's fields; the client gets
// stop_sequence, the thinking block with its signature, and cache writes
// and reads exactly as the provider reported them, buffered and streamed.
func TestNativeMessagesPassthrough(t *testing.T) {
	st := startNativeStack(t)
	tests := []struct {
		model   string
		fake    fakeprovider.Kind
		path    string // the upstream path, after the base URL
		version string // anthropic_version in the body ("" for Anthropic: a header)
	}{
		{"claude-sonnet-4-5", fakeprovider.Anthropic, "/v1/messages", ""},
		{"vertex-claude-sonnet-4-5", fakeprovider.Vertex, ":rawPredict", "vertex-2023-10-16"},
		{"bedrock-claude-sonnet-4-5", fakeprovider.Bedrock, "/invoke", "bedrock-2023-05-31"},
		{"bedrock-invoke-claude-sonnet-4-5", fakeprovider.Bedrock, "/invoke", "bedrock-2023-05-31"},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", tt.model, stream), func(t *testing.T) {
				f := st.Fake[tt.fake]
				// A system prompt of its own, so the first call writes the
				// cache and the second reads it.
				system := fmt.Sprintf("You are terse. %s %v %s", tt.model, stream, strings.Repeat("Context word. ", 40))
				var writes int64
				// No Reset between the calls: it forgets the fake's cache.
				f.Reset()
				for call := range 2 {
					resp, b := post(t, st.URL+"/v1/messages", nativeBody(tt.model, system, stream), map[string]string{"anthropic-version": "2023-06-01"})
					if resp.StatusCode != 200 {
						t.Fatalf("call %d: status %d: %s", call, resp.StatusCode, b)
					}
					r, ok := f.Last()
					if !ok {
						t.Fatal("provider got nothing")
					}
					wantPath := tt.path
					if stream {
						wantPath = map[string]string{"/v1/messages": "/v1/messages", ":rawPredict": ":streamRawPredict", "/invoke": "/invoke-with-response-stream"}[tt.path]
					}
					if !strings.HasSuffix(r.Path, wantPath) {
						t.Errorf("upstream path %s, want …%s", r.Path, wantPath)
					}
					up := gjson.ParseBytes(r.Body)
					for _, field := range []string{"top_k", "thinking.budget_tokens", "system.0.cache_control.type", "metadata.user_id", "stop_sequences.0"} {
						if !up.Get(field).Exists() {
							t.Errorf("the provider did not get %s: %s", field, r.Body)
						}
					}
					if got := up.Get("anthropic_version").Str; got != tt.version {
						t.Errorf("anthropic_version %q, want %q", got, tt.version)
					}
					if tt.version != "" && up.Get("model").Exists() {
						t.Errorf("model in a %s body: %s", tt.fake, r.Body)
					}
					msg := gjson.ParseBytes(b)
					if stream {
						msg = finalMessage(t, b)
					}
					if msg.Get("model").Str != tt.model {
						t.Errorf("model %q, want the client's %q", msg.Get("model").Str, tt.model)
					}
					if msg.Get("stop_reason").Str != "stop_sequence" || msg.Get("stop_sequence").Str != "STOP" {
						t.Errorf("stop %s / %s, want stop_sequence / STOP", msg.Get("stop_reason").Raw, msg.Get("stop_sequence").Raw)
					}
					if c := msg.Get("content.0"); c.Get("type").Str != "thinking" || c.Get("signature").Str == "" {
						t.Errorf("first block %s, want a signed thinking block", c.Raw)
					}
					if txt := msg.Get("content.1.text").Str; !strings.Contains(txt, "You said: please") || strings.Contains(txt, "STOP") {
						t.Errorf("text %q", txt)
					}
					u := msg.Get("usage")
					w, rd := u.Get("cache_creation_input_tokens").Int(), u.Get("cache_read_input_tokens").Int()
					if call == 0 {
						writes = w
						if w <= 0 || rd != 0 {
							t.Errorf("first call usage %s, want a cache write", u.Raw)
						}
					} else if rd != writes || w != 0 {
						t.Errorf("second call usage %s, want a read of the %d written", u.Raw, writes)
					}
					if u.Get("input_tokens").Int() <= 0 || u.Get("output_tokens").Int() <= 0 {
						t.Errorf("usage %s", u.Raw)
					}
				}
			})
		}
	}
}

// finalMessage folds an Anthropic stream into the message it describes,
// as the SDK does: message_start's message, the blocks and their deltas,
// and message_delta's stop and usage.
func finalMessage(t *testing.T, b []byte) gjson.Result {
	t.Helper()
	var (
		msg    = map[string]any{}
		blocks []map[string]any
		usage  = map[string]any{}
		stops  bool
	)
	for _, ev := range strings.Split(string(b), "\n\n") {
		_, data, ok := strings.Cut(ev, "data: ")
		if !ok {
			continue
		}
		d := gjson.Parse(data)
		switch d.Get("type").Str {
		case "message_start":
			m := d.Get("message")
			msg["model"] = m.Get("model").Str
			m.Get("usage").ForEach(func(k, v gjson.Result) bool { usage[k.Str] = v.Int(); return true })
		case "content_block_start":
			blocks = append(blocks, map[string]any{"type": d.Get("content_block.type").Str, "text": "", "signature": ""})
		case "content_block_delta":
			i := int(d.Get("index").Int())
			if i >= len(blocks) {
				t.Fatalf("delta for block %d of %d: %s", i, len(blocks), b)
			}
			dl := d.Get("delta")
			blocks[i]["text"] = blocks[i]["text"].(string) + dl.Get("text").Str + dl.Get("thinking").Str
			blocks[i]["signature"] = blocks[i]["signature"].(string) + dl.Get("signature").Str
		case "message_delta":
			msg["stop_reason"] = d.Get("delta.stop_reason").Str
			msg["stop_sequence"] = d.Get("delta.stop_sequence").Str
			d.Get("usage").ForEach(func(k, v gjson.Result) bool { usage[k.Str] = v.Int(); return true })
		case "message_stop":
			stops = true
		case "error":
			t.Fatalf("error event: %s", data)
		}
	}
	if !stops {
		t.Fatalf("no message_stop: %s", b)
	}
	msg["content"], msg["usage"] = blocks, usage
	return gjson.Parse(mustJSON(t, msg))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNativeMessagesBoundary: native passthrough keeps the boundary. The
// client's anthropic-beta crosses only to a backend that forwards it, a
// beta in the body and ids of state stored in the shared account are
// refused in Anthropic's error shape, and a canonical backend still
// answers, through the OpenAI shape.
func TestNativeMessagesBoundary(t *testing.T) {
	st := startNativeStack(t)
	const msg = `"max_tokens":64,"messages":[{"role":"user","content":"hi"}]`
	beta := map[string]string{"anthropic-beta": "context-1m-2025-08-07"}
	tests := []struct {
		name      string
		model     string
		body      string
		fake      fakeprovider.Kind
		wantState int
		wantType  string // Anthropic error type, for a refusal
		wantBeta  string // the anthropic-beta the provider received (header, or Bedrock's body field)
	}{
		{"beta forwarded where configured", "claude-sonnet-4-5", msg, fakeprovider.Anthropic, 200, "", "context-1m-2025-08-07"},
		{"beta dropped elsewhere (vertex)", "vertex-claude-sonnet-4-5", msg, fakeprovider.Vertex, 200, "", ""},
		{"beta dropped elsewhere (bedrock)", "bedrock-claude-sonnet-4-5", msg, fakeprovider.Bedrock, 200, "", ""},
		{"beta in the body refused", "bedrock-claude-sonnet-4-5", msg + `,"anthropic_beta":["context-1m-2025-08-07"]`, fakeprovider.Bedrock, 400, "invalid_request_error", ""},
		{"container refused", "claude-sonnet-4-5", msg + `,"container":"container_011CQ"`, fakeprovider.Anthropic, 400, "invalid_request_error", ""},
		{"file source refused", "claude-sonnet-4-5", `"max_tokens":64,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_011CN"}}]}]`, fakeprovider.Anthropic, 400, "invalid_request_error", ""},
		{"canonical backend answers", "gpt-4o-mini", msg, fakeprovider.OpenAI, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := st.Fake[tt.fake]
			f.Reset()
			resp, b := post(t, st.URL+"/v1/messages", `{"model":"`+tt.model+`",`+tt.body+`}`, beta)
			if resp.StatusCode != tt.wantState {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantState, b)
			}
			r, sent := f.Last()
			if tt.wantType != "" {
				if gjson.GetBytes(b, "type").Str != "error" || gjson.GetBytes(b, "error.type").Str != tt.wantType {
					t.Errorf("body %s, want an Anthropic %s", b, tt.wantType)
				}
				if sent {
					t.Errorf("a refused request reached the provider: %s", r.Body)
				}
				return
			}
			if !sent {
				t.Fatal("provider got nothing")
			}
			got := r.Header.Get("anthropic-beta")
			if tt.fake == fakeprovider.Bedrock {
				got = gjson.GetBytes(r.Body, "anthropic_beta.0").Str
			}
			if got != tt.wantBeta {
				t.Errorf("provider got anthropic-beta %q, want %q", got, tt.wantBeta)
			}
			if gjson.GetBytes(b, "type").Str != "message" || gjson.GetBytes(b, "model").Str != tt.model {
				t.Errorf("reply %s", b)
			}
		})
	}
}
