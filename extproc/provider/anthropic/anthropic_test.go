package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

func TestNewWithoutKey(t *testing.T) {
	for _, b := range []*config.Backend{{Name: "a"}, {Name: "b", Credential: &config.Credential{}}} {
		tr, err := New(b)
		if err != nil {
			t.Fatal(err)
		}
		up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range up.Headers {
			if h.Key == "x-api-key" {
				t.Errorf("%s: x-api-key sent without a key", b.Name)
			}
		}
		if len(up.Headers) != 2 {
			t.Errorf("%s: headers %v", b.Name, up.Headers)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	tr := newTestTranslator(t)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name     string
		endpoint provider.Endpoint
		body     string
		want     error
		field    string // must appear in the message
	}{
		{"embeddings", provider.EndpointEmbeddings, `{"model":"m","input":"x"}`, errs.ErrUnsupported, "embeddings"},
		{"completions", provider.EndpointCompletions, `{"model":"m","prompt":"x"}`, errs.ErrUnsupported, "completions"},
		{"not json", provider.EndpointChat, `{"model":`, errs.ErrInvalidRequest, "JSON"},
		{"array body", provider.EndpointChat, `[]`, errs.ErrInvalidRequest, "object"},
		{"no model", provider.EndpointChat, `{` + msgs + `}`, errs.ErrInvalidRequest, "model"},
		{"n=3", provider.EndpointChat, `{"model":"m","n":3,` + msgs + `}`, errs.ErrUnsupported, "n > 1"},
		{"n=0.5", provider.EndpointChat, `{"model":"m","n":0.5,` + msgs + `}`, errs.ErrInvalidRequest, "n must"},
		{"max tokens string", provider.EndpointChat, `{"model":"m","max_completion_tokens":"9",` + msgs + `}`, errs.ErrInvalidRequest, "max_completion_tokens"},
		{"messages object", provider.EndpointChat, `{"model":"m","messages":{}}`, errs.ErrInvalidRequest, "messages"},
		{"message not object", provider.EndpointChat, `{"model":"m","messages":["hi"]}`, errs.ErrInvalidRequest, "messages[0]"},
		{"no role", provider.EndpointChat, `{"model":"m","messages":[{"content":"hi"}]}`, errs.ErrInvalidRequest, "messages[0].role"},
		{"function role", provider.EndpointChat, `{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, errs.ErrUnsupported, "function"},
		{"content number", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":5}]}`, errs.ErrInvalidRequest, "messages[0].content"},
		{"part type", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}`, errs.ErrInvalidRequest, "messages[0].content[0].type"},
		{"system image", provider.EndpointChat, `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"x"}]}`, errs.ErrInvalidRequest, "system"},
		{"assistant image", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, errs.ErrInvalidRequest, "messages[1].content[0]"},
		{"data url not base64", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, errs.ErrInvalidRequest, "image_url.url"},
		{"file id", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, errs.ErrUnsupported, "file"},
		{"arguments array", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, errs.ErrInvalidRequest, "arguments"},
		{"tool call no name", provider.EndpointChat, `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"arguments":"{}"}}]}]}`, errs.ErrInvalidRequest, "function.name"},
		{"tools not array", provider.EndpointChat, `{"model":"m","tools":{},` + msgs + `}`, errs.ErrInvalidRequest, "tools"},
		{"tool no name", provider.EndpointChat, `{"model":"m","tools":[{"type":"function","function":{}}],` + msgs + `}`, errs.ErrInvalidRequest, "tools[0].function.name"},
		{"tool type", provider.EndpointChat, `{"model":"m","tools":[{"type":"custom","custom":{"name":"x"}}],` + msgs + `}`, errs.ErrUnsupported, "tools[0].type"},
		{"tool params", provider.EndpointChat, `{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":"x"}}],` + msgs + `}`, errs.ErrInvalidRequest, "parameters"},
		{"tool_choice bad", provider.EndpointChat, `{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes",` + msgs + `}`, errs.ErrInvalidRequest, "tool_choice"},
		{"tool_choice no tools", provider.EndpointChat, `{"model":"m","tool_choice":"required",` + msgs + `}`, errs.ErrInvalidRequest, "tool_choice"},
		{"stop number", provider.EndpointChat, `{"model":"m","stop":5,` + msgs + `}`, errs.ErrInvalidRequest, "stop"},
		{"stop array number", provider.EndpointChat, `{"model":"m","stop":["a",5],` + msgs + `}`, errs.ErrInvalidRequest, "stop"},
		{"temperature string", provider.EndpointChat, `{"model":"m","temperature":"hot",` + msgs + `}`, errs.ErrInvalidRequest, "temperature"},
		{"user number", provider.EndpointChat, `{"model":"m","user":5,` + msgs + `}`, errs.ErrInvalidRequest, "user"},
		{"stream string", provider.EndpointChat, `{"model":"m","stream":"yes",` + msgs + `}`, errs.ErrInvalidRequest, "stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := tr.TranslateRequest(&provider.Request{Endpoint: tt.endpoint, Body: []byte(tt.body)})
			if err == nil {
				t.Fatalf("no error; body %s", up.Body)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not mention %q", err, tt.field)
			}
		})
	}
}

// TestRequestDetails checks single fields of translated requests.
func TestRequestDetails(t *testing.T) {
	tr := newTestTranslator(t)
	tests := []struct {
		name, body, path, want string
		model                  string
		stream                 bool
	}{
		{name: "model override", body: `{"model":"alias","messages":[{"role":"user","content":"x"}]}`, model: "claude-real", path: "model", want: `"claude-real"`},
		{name: "stream from request", body: `{"model":"m","messages":[{"role":"user","content":"x"}]}`, stream: true, path: "stream", want: `true`},
		{name: "no stream", body: `{"model":"m","stream":false,"messages":[{"role":"user","content":"x"}]}`, path: "stream", want: ``},
		{name: "negative temperature clamped", body: `{"model":"m","temperature":-1,"messages":[{"role":"user","content":"x"}]}`, path: "temperature", want: `0`},
		{name: "max_tokens", body: `{"model":"m","max_tokens":12,"messages":[{"role":"user","content":"x"}]}`, path: "max_tokens", want: `12`},
		{name: "null max_tokens", body: `{"model":"m","max_tokens":null,"messages":[{"role":"user","content":"x"}]}`, path: "max_tokens", want: `4096`},
		{name: "single system string", body: `{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"x"}]}`, path: "system", want: `"S"`},
		{name: "empty system dropped", body: `{"model":"m","messages":[{"role":"system","content":""},{"role":"user","content":"x"}]}`, path: "system", want: ``},
		{name: "parallel false without choice", body: `{"model":"m","parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"}]}`, path: "tool_choice", want: `{"type":"auto","disable_parallel_tool_use":true}`},
		{name: "tool_choice auto without tools dropped", body: `{"model":"m","tool_choice":"auto","messages":[{"role":"user","content":"x"}]}`, path: "tool_choice", want: ``},
		{name: "pdf file", body: `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}]}]}`, path: "messages.0.content.0", want: `{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}`},
		{name: "tool result with image", body: `{"model":"m","messages":[{"role":"tool","tool_call_id":"t","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png"}}]}]}`, path: "messages.0.content.0", want: `{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"https://e.com/a.png"}}]}`},
		{name: "empty tool result", body: `{"model":"m","messages":[{"role":"tool","tool_call_id":"t","content":""}]}`, path: "messages.0.content.0", want: `{"type":"tool_result","tool_use_id":"t"}`},
		{name: "escaped unicode kept", body: `{"model":"m","messages":[{"role":"user","content":"a\u00e9\ud83d\ude00"}]}`, path: "messages.0.content.0.text", want: `"a\u00e9\ud83d\ude00"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: []byte(tt.body), Model: tt.model, Stream: tt.stream})
			if err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(up.Body) {
				t.Fatalf("invalid JSON: %s", up.Body)
			}
			if got := gjson.GetBytes(up.Body, tt.path).Raw; got != tt.want {
				t.Errorf("%s = %s, want %s\nbody %s", tt.path, got, tt.want, up.Body)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	tr := newTestTranslator(t)
	reset := fixedNow.Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	tests := []struct {
		name string
		in   map[string]string
		want []provider.Header
	}{
		{"none", map[string]string{}, nil},
		{"combined tokens", map[string]string{
			"anthropic-ratelimit-requests-limit":     "1000",
			"anthropic-ratelimit-requests-remaining": "999",
			"anthropic-ratelimit-requests-reset":     reset,
			"anthropic-ratelimit-tokens-limit":       "96000",
			"anthropic-ratelimit-tokens-remaining":   "95000",
			"anthropic-ratelimit-tokens-reset":       "2023-11-14T22:13:20Z", // == fixedNow
			"anthropic-ratelimit-input-tokens-limit": "80000",
			"retry-after":                            "7",
			"request-id":                             "req_1",
		}, []provider.Header{
			{Key: "x-ratelimit-limit-requests", Value: "1000"},
			{Key: "x-ratelimit-remaining-requests", Value: "999"},
			{Key: "x-ratelimit-reset-requests", Value: "1.5s"},
			{Key: "x-ratelimit-limit-tokens", Value: "96000"},
			{Key: "x-ratelimit-remaining-tokens", Value: "95000"},
			{Key: "x-ratelimit-reset-tokens", Value: "0s"},
			{Key: "retry-after", Value: "7"},
		}},
		{"input tokens fallback, past and bad resets", map[string]string{
			"anthropic-ratelimit-requests-reset":         "2000-01-01T00:00:00Z",
			"anthropic-ratelimit-input-tokens-limit":     "80000",
			"anthropic-ratelimit-input-tokens-remaining": "1000",
			"anthropic-ratelimit-input-tokens-reset":     "soon",
		}, []provider.Header{
			{Key: "x-ratelimit-reset-requests", Value: "0s"},
			{Key: "x-ratelimit-limit-tokens", Value: "80000"},
			{Key: "x-ratelimit-remaining-tokens", Value: "1000"},
			{Key: "x-ratelimit-reset-tokens", Value: "soon"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tr.TranslateResponseHeaders(func(k string) string { return tt.in[k] })
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestStreamEdgeCases(t *testing.T) {
	tr := newTestTranslator(t)
	tests := []struct {
		name string
		info *provider.StreamInfo
		in   string
		want []string // substrings expected in order
		not  []string
	}{
		{
			name: "empty stream",
			info: &provider.StreamInfo{Model: "m", IncludeUsage: true},
			want: []string{`"code":"stream_truncated"`, "data: [DONE]\n\n"},
			not:  []string{`"usage"`},
		},
		{
			name: "no message_start uses request id",
			info: &provider.StreamInfo{Model: "m", RequestID: "r9"},
			in:   "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			want: []string{`"id":"chatcmpl-r9"`, `"role":"assistant"`, `"content":"hi"`, "data: [DONE]\n\n"},
		},
		{
			name: "nil info, garbage and unknown events ignored",
			in:   "data: not json\n\nevent: future\ndata: {\"type\":\"future_event\"}\n\n: comment\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			want: []string{"data: [DONE]\n\n"},
			not:  []string{"not json", "future"},
		},
		{
			name: "input after stop ignored",
			info: &provider.StreamInfo{Model: "m"},
			in:   "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n",
			want: []string{"data: [DONE]\n\n"},
			not:  []string{"late"},
		},
		{
			name: "json delta for unknown block dropped",
			info: &provider.StreamInfo{Model: "m"},
			in:   "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			not:  []string{"tool_calls"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := runStream(t, tr, tt.info, []byte(tt.in), 0)
			s := string(out)
			rest := s
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("missing %q (in order) in\n%s", w, s)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tt.not {
				if strings.Contains(s, n) {
					t.Errorf("unexpected %q in\n%s", n, s)
				}
			}
			if strings.Count(s, "[DONE]") != 1 {
				t.Errorf("want one [DONE]:\n%s", s)
			}
		})
	}
}

// TestStreamUsageFromMessageDelta: newer API versions repeat cumulative
// input counts in message_delta; non-zero values are taken.
func TestStreamUsageFromMessageDelta(t *testing.T) {
	tr := newTestTranslator(t)
	in := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":0,\"cache_read_input_tokens\":7,\"output_tokens\":9}}\n\n"
	_, u := runStream(t, tr, &provider.StreamInfo{Model: "m"}, []byte(in), 3)
	want := provider.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21, CachedTokens: 7}
	if u != want {
		t.Errorf("usage %+v, want %+v", u, want)
	}
}

func TestResponseBadReplies(t *testing.T) {
	tr := newTestTranslator(t)
	for _, body := range []string{``, `[]`, `"x"`, `{"type":"error","error":{"type":"api_error","message":"boom"}}`, `{"content":"text"}`} {
		_, _, err := tr.TranslateResponse(&provider.Response{Endpoint: provider.EndpointChat, Status: 200, Body: []byte(body)})
		if !errors.Is(err, errs.ErrUpstreamBadReply) {
			t.Errorf("%s: error %v, want ErrUpstreamBadReply", body, err)
		}
	}
}

// TestStreamErrorRedacted: an error event mid-stream names the gateway's
// organization; the client's in-band error does not.
func TestStreamErrorRedacted(t *testing.T) {
	tr, err := New(&config.Backend{Name: "claude", Provider: "anthropic", Credential: &config.Credential{Key: "sk-ant-test"}})
	if err != nil {
		t.Fatal(err)
	}
	st := tr.NewStream(&provider.StreamInfo{Endpoint: provider.EndpointChat, Model: "claude"})
	out, err := st.Translate(nil, []byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"This request would exceed the rate limit for your organization (c0b34a1e-6f1a-4a2b-9c3d-0123456789ab) of 50 requests per minute.\"}}\n\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("c0b34a1e")) || !bytes.Contains(out, []byte("of 50 requests per minute")) {
		t.Errorf("stream = %s", out)
	}
}
