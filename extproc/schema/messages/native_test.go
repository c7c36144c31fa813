package messages

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

func TestNativeRewrite(t *testing.T) {
	for _, c := range []struct {
		name string
		body string
		edit NativeEdit
		want string // "" means nil: the client's body is kept
		err  bool
	}{
		{"same model kept", `{"model":"claude-x","max_tokens":1}`, NativeEdit{Model: "claude-x"}, "", false},
		{"no edit", `{"model":"a","max_tokens":1}`, NativeEdit{}, "", false},
		{"alias spliced, bytes kept", `{ "model" : "alias",  "top_k":5 }`, NativeEdit{Model: "claude-x"}, `{ "model" : "claude-x",  "top_k":5 }`, false},
		{"escaped key matched", `{"mod\u0065l":"alias"}`, NativeEdit{Model: "c"}, `{"mod\u0065l":"c"}`, false},
		{"model needs escaping", `{"model":"a"}`, NativeEdit{Model: `c"x`}, `{"model":"c\"x"}`, false},
		{"drop model and stream, add version", `{"model":"a", "stream":true,"max_tokens":1}`,
			NativeEdit{DropModel: true, DropStream: true, Version: "bedrock-2023-05-31"}, `{"max_tokens":1,"anthropic_version":"bedrock-2023-05-31"}`, false},
		{"client version kept", `{"anthropic_version":"v0","model":"a"}`, NativeEdit{DropModel: true, Version: "v1"}, `{"anthropic_version":"v0"}`, false},
		{"client version alone: nothing to do", `{"anthropic_version":"v0","x":1}`, NativeEdit{DropModel: true, Version: "v1"}, "", false},
		{"beta as array, spaces and empties dropped", `{"model":"a"}`, NativeEdit{DropModel: true, Beta: " b1, ,b2 "}, `{"anthropic_beta":["b1","b2"]}`, false},
		{"beta of only commas is none", `{"model":"a"}`, NativeEdit{Model: "a", Beta: " , "}, "", false},
		{"client beta field kept", `{"anthropic_beta":["x"],"model":"a"}`, NativeEdit{DropModel: true, Beta: "b1"}, `{"anthropic_beta":["x"]}`, false},
		{"drop with alias set ignores alias", `{"model":"a","m":{"model":"deep"}}`, NativeEdit{Model: "c", DropModel: true}, `{"m":{"model":"deep"}}`, false},
		{"rename in the slow path", `{"model":"a","stream":false}`, NativeEdit{Model: "c", DropStream: true}, `{"model":"c"}`, false},
		{"not JSON", `{"model":`, NativeEdit{Model: "c"}, "", true},
		{"not an object", `["model"]`, NativeEdit{Model: "c"}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			orig := bytes.Clone(body)
			got, err := NativeRewrite(body, &c.edit)
			if !bytes.Equal(body, orig) {
				t.Fatal("NativeRewrite modified the body")
			}
			if c.err {
				if !errors.Is(err, errs.ErrInvalidRequest) {
					t.Fatalf("err = %v, want ErrInvalidRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if got != nil {
					t.Fatalf("got %s, want nil (unchanged)", got)
				}
				return
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestNativeCheckStoredState(t *testing.T) {
	for _, c := range []struct {
		name, body string
		refused    bool
	}{
		{"plain", `{"model":"a","messages":[{"role":"user","content":"Hi"}]}`, false},
		{"base64 and url sources", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA"}},{"type":"document","source":{"type":"url","url":"https://x/y.pdf"}}]}]}`, false},
		{"container", `{"container":"container_011","messages":[]}`, true},
		{"container null", `{"container":null,"messages":[]}`, false},
		{"container object", `{"container":{"id":"c","skills":[]},"messages":[]}`, true},
		{"escaped container key", `{"contain\u0065r":"c"}`, true},
		{"container named in text", `{"messages":[{"role":"user","content":"what is a \"container\"?"}]}`, false},
		{"document file source", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_1"}}]}]}`, true},
		{"image file source", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_1"}}]}]}`, true},
		{"escaped file_id, type file", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"fil\u0065","fil\u0065_id":"f"}}]}]}`, true},
		{"container_upload", `{"messages":[{"role":"user","content":[{"type":"container_upload","file_id":"file_1"}]}]}`, true},
		{"file in a tool_result", `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}]}`, true},
		{"file_id in a tool_use input is the model's", `{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"open","input":{"file_id":"f"}}]}]}`, false},
		{"unicode text takes the walk", `{"messages":[{"role":"user","content":"caf\u00e9"}]}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := NativeCheckStoredState([]byte(c.body))
			if !c.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errs.ErrInvalidRequest) || errs.RuleOf(err) != errs.RuleMessagesStoredState || errs.Status(err) != 400 {
				t.Fatalf("err = %v (rule %q, status %d), want a 400 invalid request with rule %s", err, errs.RuleOf(err), errs.Status(err), errs.RuleMessagesStoredState)
			}
		})
	}
}

func TestNativeUsage(t *testing.T) {
	for _, c := range []struct {
		usage string
		want  provider.Usage
	}{
		{`{"input_tokens":21,"cache_creation_input_tokens":188086,"cache_read_input_tokens":0,"output_tokens":393}`,
			provider.Usage{PromptTokens: 188107, CompletionTokens: 393, TotalTokens: 188500, CacheWriteTokens: 188086}},
		{`{"input_tokens":2095,"cache_read_input_tokens":1800,"output_tokens":503,"server_tool_use":{"web_search_requests":1}}`,
			provider.Usage{PromptTokens: 3895, CompletionTokens: 503, TotalTokens: 4398, CachedTokens: 1800}},
		{`{"input_tokens":-5,"output_tokens":"7","cache_read_input_tokens":1e300}`, provider.Usage{}},
		{`null`, provider.Usage{}},
	} {
		if got := NativeUsage(gjson.Parse(c.usage)); got != c.want {
			t.Errorf("NativeUsage(%s) = %+v, want %+v", c.usage, got, c.want)
		}
	}
}

func TestNativeResponse(t *testing.T) {
	body := `{"id":"msg_1","type":"message","model":"claude-x","content":[],"usage":{"input_tokens":3,"output_tokens":4}}`
	for _, c := range []struct {
		name, body, model, want string
		err                     bool
	}{
		{"rewritten", body, "my-claude", strings.Replace(body, `"claude-x"`, `"my-claude"`, 1), false},
		{"same name", body, "claude-x", "", false},
		{"no name", body, "", "", false},
		{"no model field", `{"type":"message"}`, "m", "", false},
		{"not JSON", `<html>`, "m", "", true},
		{"not an object", `[1]`, "m", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := NativeResponse([]byte(c.body), c.model)
			if c.err != (err != nil) || (err != nil && !errors.Is(err, errs.ErrUpstreamBadReply)) {
				t.Fatalf("err = %v", err)
			}
			if string(got) != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// nativeFlow is a documented event flow: thinking, a ping, text, and usage
// repeated in message_delta as newer API versions send it.
const nativeFlow = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":472,"cache_creation_input_tokens":100,"cache_read_input_tokens":2048,"output_tokens":2}}}` + "\n\n" +
	"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}` + "\n\n" +
	"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAh"}}` + "\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"###"},"usage":{"input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":233}}` + "\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

func runNative(t testing.TB, in string, cuts ...int) ([]byte, provider.Usage, error) {
	s := NewNativeStream("my-claude")
	var out []byte
	var err error
	prev := 0
	for _, c := range cuts {
		if out, err = s.Translate(out, []byte(in[prev:c]), false); err != nil {
			return out, s.Usage(), err
		}
		prev = c
	}
	out, err = s.Translate(out, []byte(in[prev:]), true)
	return out, s.Usage(), err
}

func TestNativeStreamSplits(t *testing.T) {
	want := strings.Replace(nativeFlow, `"model":"claude-x"`, `"model":"my-claude"`, 1)
	wantUsage := provider.Usage{PromptTokens: 2620, CompletionTokens: 233, TotalTokens: 2853, CachedTokens: 2048, CacheWriteTokens: 100}
	for _, in := range []string{nativeFlow, strings.ReplaceAll(nativeFlow, "\n", "\r\n")} {
		wantOut := want
		if strings.Contains(in, "\r\n") {
			wantOut = strings.ReplaceAll(want, "\n", "\r\n")
		}
		for i := 0; i <= len(in); i++ {
			for _, cuts := range [][]int{{i}, {i / 2, i}} {
				out, u, err := runNative(t, in, cuts...)
				if err != nil || string(out) != wantOut || u != wantUsage {
					t.Fatalf("cuts %v: err %v, usage %+v\n--- got\n%q\n--- want\n%q", cuts, err, u, out, wantOut)
				}
			}
		}
	}
}

func TestNativeStreamEnds(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"my-claude\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
	for _, c := range []struct {
		name, in, out string
		cut           bool
	}{
		{"complete", start + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", "", false},
		{"cut after a delta", start + "event: content_block_delta\ndata: {}\n\n", "", true},
		{"cut inside an event", start + "event: content_block_delta\ndata: {\"ty", start + "event: content_block_delta\ndata: {\"ty\n\n", true},
		{"error event ends it", start + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", "", false},
		{"message_stop without its blank line", start + "event: message_stop\ndata: {\"type\":\"message_stop\"}", start + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", false},
		{"empty", "", "", true},
		{"no event lines, data types read", "data: {\"type\":\"message_start\",\"message\":{\"model\":\"x\"}}\n\ndata: {\"type\":\"message_stop\"}\n\n",
			"data: {\"type\":\"message_start\",\"message\":{\"model\":\"my-claude\"}}\n\ndata: {\"type\":\"message_stop\"}\n\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runNative(t, c.in)
			want := c.out
			if want == "" {
				want = c.in
			}
			if string(out) != want {
				t.Errorf("got %q\nwant %q", out, want)
			}
			if c.cut != (err != nil) || (err != nil && !errors.Is(err, errs.ErrUpstreamBadReply)) {
				t.Errorf("err = %v, cut %v", err, c.cut)
			}
		})
	}
}

func TestNativeStreamEventTooLarge(t *testing.T) {
	s := NewNativeStream("m")
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		_, err = s.Translate(nil, chunk, false)
	}
	if !errors.Is(err, errs.ErrUpstreamBadReply) {
		t.Fatalf("err = %v, want ErrUpstreamBadReply", err)
	}
}

func TestNativeAppendEvent(t *testing.T) {
	s := NewNativeStream("my-claude")
	var out []byte
	var err error
	for _, ev := range []string{
		"{\"type\":\"message_start\",\n\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":9,\"cache_creation_input_tokens\":4,\"output_tokens\":1}}}",
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\nb"}}`,
		`{"type":"Bad\nName","x":1}`,
		`{"type":"message_delta","usage":{"output_tokens":12}}`,
		`{"type":"message_stop"}`,
	} {
		if out, err = s.AppendEvent(out, []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	want := "event: message_start\ndata: {\"type\":\"message_start\", \"message\":{\"model\":\"my-claude\",\"usage\":{\"input_tokens\":9,\"cache_creation_input_tokens\":4,\"output_tokens\":1}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\nb\"}}\n\n" +
		"data: {\"type\":\"Bad\\nName\",\"x\":1}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":12}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if u := s.Usage(); u != (provider.Usage{PromptTokens: 13, CompletionTokens: 12, TotalTokens: 25, CacheWriteTokens: 4}) {
		t.Fatalf("usage %+v", u)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(nil, []byte(`not json`)); !errors.Is(err, errs.ErrUpstreamBadReply) {
		t.Fatalf("err = %v", err)
	}
	e := NewNativeStream("m")
	got := e.AppendError(nil, "rate_limit_error", `slow "down"`)
	if string(got) != "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow \\\"down\\\"\"}}\n\n" || e.Finish() != nil {
		t.Fatalf("AppendError: %q, finish %v", got, e.Finish())
	}
}

// TestNativeStreamPassesUnknownEvents: events Weir does not know (a
// future type, comments, non-JSON data) reach the client unchanged.
func TestNativeStreamPassesUnknownEvents(t *testing.T) {
	in := ": comment\n\nevent: future_event\ndata: {\"type\":\"future_event\",\"model\":\"x\"}\n\nevent: weird\ndata: not json\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	out, _, err := runNative(t, in)
	if err != nil || string(out) != in {
		t.Fatalf("err %v\n%q", err, out)
	}
}

func BenchmarkNativeCheckStoredState(b *testing.B) {
	body := []byte(`{"model":"claude-x","max_tokens":1024,"messages":[` + strings.Repeat(`{"role":"user","content":[{"type":"text","text":"Hello there, this is a longer message."}]},`, 20) + `{"role":"user","content":"end"}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := NativeCheckStoredState(body); err != nil {
			b.Fatal(err)
		}
	}
}
