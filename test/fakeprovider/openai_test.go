package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const oaTools = `"tools":[
 {"type":"function","function":{"name":"first","parameters":{"type":"object",
   "properties":{"s":{"type":"string"},"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"},
     "a":{"type":"array","items":{"type":"string"}},"o":{"type":"object"},"e":{"type":"string","enum":["celsius","fahrenheit"]},
     "opt":{"type":"string"},"u":{"type":["null","integer"]}},
   "required":["s","n","i","b","a","o","e","u"]}}},
 {"type":"function","function":{"name":"second","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`

const firstArgs = `{"s":"test","n":1,"i":1,"b":true,"a":[],"o":{},"e":"celsius","u":1}`

func TestOpenAIChatNonStream(t *testing.T) {
	cases := []struct {
		name       string
		body       string
		hdr        map[string]string
		wantText   string // empty: expect a tool call
		wantTool   string
		wantArgs   string
		wantFinish string
		wantPrompt int
		wantCompl  int
		wantCached int
	}{
		{
			name:       "text",
			body:       `{"model":"gpt-4o","messages":[{"role":"system","content":"be  brief"},{"role":"user","content":"hello there"}]}`,
			wantText:   "Hello from fake-openai! You said: hello there",
			wantFinish: "stop", wantPrompt: (3 + 2) + (3 + 2), wantCompl: 7,
		},
		{
			name:       "multi-part content uses text parts",
			body:       `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"part one"},{"type":"image_url","image_url":{"url":"data:x"}},{"type":"text","text":"part two"}]}]}`,
			wantText:   "Hello from fake-openai! You said: part one part two",
			wantFinish: "stop", wantPrompt: 3 + 4, wantCompl: 9,
		},
		{
			name:       "echo truncated to 200 characters",
			body:       `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("é", 300) + `"}]}`,
			wantText:   "Hello from fake-openai! You said: " + strings.Repeat("é", 200),
			wantFinish: "stop", wantPrompt: 4, wantCompl: 6,
		},
		{
			name:       "max_tokens cuts the reply",
			body:       `{"model":"gpt-4o","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`,
			wantText:   "Hello from fake-openai!",
			wantFinish: "length", wantPrompt: 4, wantCompl: 3,
		},
		{
			name:       "exact-usage pads to max_completion_tokens",
			body:       `{"model":"gpt-4o","max_tokens":3,"max_completion_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			hdr:        map[string]string{BehaviorHeader: "exact-usage"},
			wantText:   "Hello from fake-openai! You said: hi" + strings.Repeat(" lorem", 4),
			wantFinish: "stop", wantPrompt: 4, wantCompl: 10,
		},
		{
			name:       "cached tokens",
			body:       `{"model":"gpt-4o","messages":[{"role":"user","content":"one two three four five six seven"}]}`,
			hdr:        map[string]string{BehaviorHeader: "cached=6"},
			wantText:   "Hello from fake-openai! You said: one two three four five six seven",
			wantFinish: "stop", wantPrompt: 10, wantCompl: 12, wantCached: 6,
		},
		{
			name:     "tool call to the first tool with schema-derived arguments",
			body:     `{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],` + oaTools + `}`,
			wantTool: "first", wantArgs: firstArgs, wantFinish: "tool_calls", wantPrompt: 4, wantCompl: 2,
		},
		{
			name:     "forced tool",
			body:     `{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],"tool_choice":{"type":"function","function":{"name":"second"}},` + oaTools + `}`,
			wantTool: "second", wantArgs: `{"city":"test"}`, wantFinish: "tool_calls", wantPrompt: 4, wantCompl: 2,
		},
		{
			name:       "tool_choice none",
			body:       `{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],"tool_choice":"none",` + oaTools + `}`,
			wantText:   "Hello from fake-openai! You said: weather?",
			wantFinish: "stop", wantPrompt: 4, wantCompl: 6,
		},
		{
			name: "tool result answered with text",
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"},
				{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"second","arguments":"{\"city\":\"Paris\"}"}}]},
				{"role":"tool","tool_call_id":"call_1","content":"18 degrees"}],` + oaTools + `}`,
			wantText:   "Hello from fake-openai! Tool result: 18 degrees",
			wantFinish: "stop", wantPrompt: (3 + 1) + (3 + 2) + (3 + 2), wantCompl: 7,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTest(t, OpenAI)
			r := do(t, OpenAI, "POST", url+"/v1/chat/completions", tc.body, tc.hdr)
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, h := range []string{"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
				"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "openai-processing-ms"} {
				if r.Header.Get(h) == "" {
					t.Errorf("missing header %s", h)
				}
			}
			if got := r.Header.Get("x-request-id"); got != "req_fake000001" {
				t.Errorf("x-request-id %q", got)
			}
			if r.Header.Get("retry-after") != "" {
				t.Errorf("retry-after on a 200")
			}
			m := r.json(t)
			if get(t, m, "object") != "chat.completion" || get(t, m, "id") != "chatcmpl-fake000001" ||
				get(t, m, "model") != "gpt-4o" || get(t, m, "created") != float64(fixedNow.Unix()) {
				t.Errorf("envelope: %s", r.Body)
			}
			choice := get(t, m, "choices", 0)
			if get(t, choice, "finish_reason") != tc.wantFinish {
				t.Errorf("finish_reason %v, want %s", get(t, choice, "finish_reason"), tc.wantFinish)
			}
			msg := get(t, choice, "message")
			if get(t, msg, "role") != "assistant" {
				t.Errorf("role %v", get(t, msg, "role"))
			}
			if tc.wantText != "" {
				if got := get(t, msg, "content"); got != tc.wantText {
					t.Errorf("content %q, want %q", got, tc.wantText)
				}
				if _, ok := msg.(map[string]any)["tool_calls"]; ok {
					t.Errorf("unexpected tool_calls")
				}
			} else {
				if get(t, msg, "content") != nil {
					t.Errorf("content %v, want null", get(t, msg, "content"))
				}
				call := get(t, msg, "tool_calls", 0)
				if get(t, call, "id") != "call_fake000001" || get(t, call, "type") != "function" ||
					get(t, call, "function", "name") != tc.wantTool || get(t, call, "function", "arguments") != tc.wantArgs {
					t.Errorf("tool call %v", call)
				}
			}
			u := get(t, m, "usage")
			if get(t, u, "prompt_tokens") != float64(tc.wantPrompt) || get(t, u, "completion_tokens") != float64(tc.wantCompl) ||
				get(t, u, "total_tokens") != float64(tc.wantPrompt+tc.wantCompl) ||
				get(t, u, "prompt_tokens_details", "cached_tokens") != float64(tc.wantCached) ||
				get(t, u, "completion_tokens_details", "reasoning_tokens") != float64(0) {
				t.Errorf("usage %v, want prompt %d completion %d cached %d", u, tc.wantPrompt, tc.wantCompl, tc.wantCached)
			}
			if last, ok := s.Last(); !ok || last.Path != "/v1/chat/completions" || string(last.Body) != tc.body {
				t.Errorf("recorded %+v", last)
			}
		})
	}
}

func TestOpenAIChatStream(t *testing.T) {
	cases := []struct {
		name         string
		body         string
		includeUsage bool
		wantText     string
		wantArgs     string
		wantFinish   string
		wantCompl    int
	}{
		{name: "text with usage", includeUsage: true,
			body:     `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello  there"}]}`,
			wantText: "Hello from fake-openai! You said: hello  there", wantFinish: "stop", wantCompl: 7},
		{name: "text without usage",
			body:     `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hello"}]}`,
			wantText: "Hello from fake-openai! You said: hello", wantFinish: "stop", wantCompl: 6},
		{name: "tool call", includeUsage: true,
			body:     `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],` + oaTools + `}`,
			wantArgs: firstArgs, wantFinish: "tool_calls", wantCompl: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newTest(t, OpenAI)
			r := do(t, OpenAI, "POST", url+"/v1/chat/completions", tc.body, nil)
			if r.Status != 200 || r.ReadErr != nil {
				t.Fatalf("status %d err %v: %s", r.Status, r.ReadErr, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("Content-Type %q", ct)
			}
			evs := parseSSE(t, r.Body)
			if len(evs) < 3 || evs[len(evs)-1].Data != "[DONE]" {
				t.Fatalf("stream does not end with [DONE]: %+v", evs)
			}
			var text, args strings.Builder
			var deltas, argPieces int
			var finish any
			var usage any
			for i, ev := range evs[:len(evs)-1] {
				if ev.Name != "" {
					t.Errorf("OpenAI events have no event name, got %q", ev.Name)
				}
				ch := decodeJSON(t, ev.Data)
				if ch["object"] != "chat.completion.chunk" || ch["id"] != "chatcmpl-fake000001" || ch["model"] != "gpt-4o" {
					t.Errorf("chunk envelope %s", ev.Data)
				}
				u, hasUsage := ch["usage"]
				if hasUsage != tc.includeUsage {
					t.Errorf("chunk %d: usage key present=%v, include_usage=%v", i, hasUsage, tc.includeUsage)
				}
				choices := ch["choices"].([]any)
				if len(choices) == 0 {
					if i != len(evs)-2 || !tc.includeUsage {
						t.Errorf("empty choices on chunk %d", i)
					}
					usage = u
					continue
				}
				if hasUsage && u != nil {
					t.Errorf("usage on a chunk with choices: %s", ev.Data)
				}
				d := get(t, choices[0], "delta").(map[string]any)
				if i == 0 && d["role"] != "assistant" {
					t.Errorf("first delta without role: %s", ev.Data)
				}
				if c, ok := d["content"].(string); ok && c != "" {
					text.WriteString(c)
					deltas++
				}
				if tcs, ok := d["tool_calls"].([]any); ok {
					call := tcs[0].(map[string]any)
					if i == 0 && (call["id"] != "call_fake000001" || get(t, call, "function", "name") != "first") {
						t.Errorf("first tool chunk %s", ev.Data)
					}
					if a := get(t, call, "function", "arguments").(string); a != "" {
						args.WriteString(a)
						argPieces++
					}
				}
				if f := get(t, choices[0], "finish_reason"); f != nil {
					finish = f
				}
			}
			if text.String() != tc.wantText {
				t.Errorf("text %q, want %q", text.String(), tc.wantText)
			}
			if tc.wantText != "" && deltas != tc.wantCompl {
				t.Errorf("%d content deltas, want one per word (%d)", deltas, tc.wantCompl)
			}
			if args.String() != tc.wantArgs {
				t.Errorf("arguments %q, want %q", args.String(), tc.wantArgs)
			}
			if tc.wantArgs != "" && argPieces < 2 {
				t.Errorf("arguments streamed in %d pieces", argPieces)
			}
			if finish != tc.wantFinish {
				t.Errorf("finish_reason %v", finish)
			}
			if tc.includeUsage {
				if usage == nil || get(t, usage, "completion_tokens") != float64(tc.wantCompl) {
					t.Errorf("usage chunk %v", usage)
				}
			}
		})
	}
}

func TestOpenAIValidation(t *testing.T) {
	cases := []struct {
		name      string
		path      string
		body      string
		wantParam any
		wantCode  any
		wantMsg   string
	}{
		{"bad JSON", "/v1/chat/completions", `{"model":`, nil, nil, "could not parse the JSON body"},
		{"not an object", "/v1/chat/completions", `[1]`, nil, nil, "could not parse the JSON body"},
		{"wrong type", "/v1/chat/completions", `{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}`, "stream", "invalid_type", "Invalid type"},
		{"missing model", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, nil, nil, "model parameter"},
		{"missing messages", "/v1/chat/completions", `{"model":"m"}`, "messages", "missing_required_parameter", "'messages'"},
		{"empty messages", "/v1/chat/completions", `{"model":"m","messages":[]}`, "messages", "empty_array", "empty array"},
		{"bad role", "/v1/chat/completions", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role", "invalid_value", "'robot'"},
		{"orphan tool message", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"r"}]}`, "messages.[1].role", nil, "preceeding message with 'tool_calls'"},
		{"unanswered tool call", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"y"}]}`, "messages.[2].role", nil, "c1"},
		{"forced unknown tool", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"nope"}},` + oaTools + `}`, "tool_choice", nil, "'nope'"},
		{"exact-usage without max_tokens", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil, nil, "exact-usage"},
		{"embeddings without input", "/v1/embeddings", `{"model":"e"}`, "input", "missing_required_parameter", "'input'"},
		{"embeddings bad input", "/v1/embeddings", `{"model":"e","input":{"a":1}}`, "input", "invalid_type", "'input'"},
		{"embeddings bad format", "/v1/embeddings", `{"model":"e","input":"x","encoding_format":"hex"}`, "encoding_format", "invalid_value", "'hex'"},
		{"completions bad prompt", "/v1/completions", `{"model":"m","prompt":{}}`, "prompt", "invalid_type", "'prompt'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newTest(t, OpenAI)
			var hdr map[string]string
			if strings.HasPrefix(tc.name, "exact-usage") {
				hdr = map[string]string{BehaviorHeader: "exact-usage"}
			}
			r := do(t, OpenAI, "POST", url+tc.path, tc.body, hdr)
			if r.Status != 400 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			assertOpenAIError(t, r, "invalid_request_error", tc.wantCode)
			e := get(t, r.json(t), "error")
			if get(t, e, "param") != tc.wantParam {
				t.Errorf("param %v, want %v", get(t, e, "param"), tc.wantParam)
			}
			if msg := get(t, e, "message").(string); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q lacks %q", msg, tc.wantMsg)
			}
		})
	}
}

// assertOpenAIError checks the shape {"error":{"message","type","param","code"}}.
func assertOpenAIError(t *testing.T, r result, wantType string, wantCode any) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	m := r.json(t)
	if len(m) != 1 {
		t.Errorf("top-level keys %v", m)
	}
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", r.Body)
	}
	var keys []string
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"code", "message", "param", "type"}) {
		t.Errorf("error keys %v", keys)
	}
	if e["type"] != wantType {
		t.Errorf("error.type %v, want %s", e["type"], wantType)
	}
	if e["code"] != wantCode {
		t.Errorf("error.code %v, want %v", e["code"], wantCode)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Errorf("empty message")
	}
	if r.Header.Get("x-request-id") == "" {
		t.Errorf("error without x-request-id")
	}
}

func TestOpenAIStatusBehavior(t *testing.T) {
	cases := []struct {
		status   int
		wantType string
		wantCode any
	}{
		{400, "invalid_request_error", nil},
		{401, "invalid_request_error", "invalid_api_key"},
		{403, "invalid_request_error", "unsupported_country_region_territory"},
		{404, "invalid_request_error", "model_not_found"},
		{418, "invalid_request_error", nil},
		{429, "requests", "rate_limit_exceeded"},
		{500, "server_error", nil},
		{502, "server_error", nil},
		{503, "service_unavailable_error", nil},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			_, url := newTest(t, OpenAI)
			for _, path := range []string{"/v1/chat/completions", "/v1/embeddings"} {
				r := do(t, OpenAI, "POST", url+path, `{"model":"m","messages":[{"role":"user","content":"x"}],"input":"x"}`,
					map[string]string{BehaviorHeader: "status=" + strconv.Itoa(tc.status)})
				if r.Status != tc.status {
					t.Fatalf("%s: status %d", path, r.Status)
				}
				assertOpenAIError(t, r, tc.wantType, tc.wantCode)
				if tc.status == 429 {
					if r.Header.Get("retry-after") != "1" || r.Header.Get("x-ratelimit-remaining-requests") != "0" ||
						r.Header.Get("x-ratelimit-limit-requests") == "" || r.Header.Get("x-ratelimit-reset-requests") == "" {
						t.Errorf("429 headers %v", r.Header)
					}
				} else if r.Header.Get("retry-after") != "" {
					t.Errorf("retry-after on %d", tc.status)
				}
			}
		})
	}
}

func TestOpenAIRequireKey(t *testing.T) {
	cases := []struct {
		name     string
		auth     string
		want     int
		wantCode any
	}{
		{"missing", "", 401, nil},
		{"wrong", "Bearer sk-wrong-key-123", 401, "invalid_api_key"},
		{"not bearer", "sk-right", 401, "invalid_api_key"},
		{"right", "Bearer sk-right", 200, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTest(t, OpenAI)
			s.RequireKey("sk-right")
			r := do(t, OpenAI, "POST", url+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`,
				map[string]string{"Authorization": tc.auth})
			if r.Status != tc.want {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if tc.want == 401 {
				assertOpenAIError(t, r, "invalid_request_error", tc.wantCode)
			}
		})
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		inputs []string
		dims   int
		base64 bool
	}{
		{"string", `{"model":"text-embedding-3-small","input":"hello world"}`, []string{"hello world"}, 8, false},
		{"array", `{"model":"text-embedding-3-small","input":["a b","c"]}`, []string{"a b", "c"}, 8, false},
		{"base64 with dimensions", `{"model":"text-embedding-3-small","input":["a b","c"],"encoding_format":"base64","dimensions":20}`, []string{"a b", "c"}, 20, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newTest(t, OpenAI)
			r := do(t, OpenAI, "POST", url+"/v1/embeddings", tc.body, nil)
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var resp struct {
				Object string `json:"object"`
				Model  string `json:"model"`
				Data   []struct {
					Object    string          `json:"object"`
					Index     int             `json:"index"`
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
				Usage struct {
					PromptTokens int `json:"prompt_tokens"`
					TotalTokens  int `json:"total_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(r.Body, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Object != "list" || resp.Model != "text-embedding-3-small" || len(resp.Data) != len(tc.inputs) {
				t.Fatalf("envelope %s", r.Body)
			}
			wantTokens := 0
			for i, in := range tc.inputs {
				wantTokens += len(strings.Fields(in))
				d := resp.Data[i]
				if d.Object != "embedding" || d.Index != i {
					t.Errorf("data[%d] %+v", i, d)
				}
				var vec []float32
				if tc.base64 {
					var s string
					if err := json.Unmarshal(d.Embedding, &s); err != nil {
						t.Fatalf("base64 embedding is not a string: %s", d.Embedding)
					}
					raw, err := base64.StdEncoding.DecodeString(s)
					if err != nil || len(raw) != 4*tc.dims {
						t.Fatalf("base64 %q: %v", s, err)
					}
					for j := 0; j < tc.dims; j++ {
						vec = append(vec, math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:])))
					}
				} else if err := json.Unmarshal(d.Embedding, &vec); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(vec, Embedding(in, tc.dims)) {
					t.Errorf("data[%d] = %v, want %v", i, vec, Embedding(in, tc.dims))
				}
				var norm float64
				for _, f := range vec {
					norm += float64(f) * float64(f)
				}
				if math.Abs(norm-1) > 1e-5 {
					t.Errorf("vector not normalised: |v|^2 = %v", norm)
				}
			}
			if resp.Usage.PromptTokens != wantTokens || resp.Usage.TotalTokens != wantTokens {
				t.Errorf("usage %+v, want %d", resp.Usage, wantTokens)
			}
		})
	}
	if reflect.DeepEqual(Embedding("a", 8), Embedding("b", 8)) {
		t.Errorf("different inputs gave the same vector")
	}
}

func TestOpenAICompletions(t *testing.T) {
	_, url := newTest(t, OpenAI)
	r := do(t, OpenAI, "POST", url+"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":["say hi","x"]}`, nil)
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.json(t)
	if get(t, m, "object") != "text_completion" ||
		get(t, m, "choices", 0, "text") != "Hello from fake-openai! You said: say hi" ||
		get(t, m, "choices", 1, "text") != "Hello from fake-openai! You said: x" ||
		get(t, m, "choices", 1, "index") != float64(1) || get(t, m, "choices", 0, "finish_reason") != "stop" ||
		get(t, m, "usage", "prompt_tokens") != float64(3) || get(t, m, "usage", "completion_tokens") != float64(13) {
		t.Errorf("body %s", r.Body)
	}

	r = do(t, OpenAI, "POST", url+"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"say hi","stream":true,"max_tokens":4}`, nil)
	evs := parseSSE(t, r.Body)
	if evs[len(evs)-1].Data != "[DONE]" {
		t.Fatalf("no [DONE]: %+v", evs)
	}
	var text strings.Builder
	var finish any
	for _, ev := range evs[:len(evs)-1] {
		ch := decodeJSON(t, ev.Data)
		if ch["object"] != "text_completion" {
			t.Errorf("chunk %s", ev.Data)
		}
		text.WriteString(get(t, ch, "choices", 0, "text").(string))
		if f := get(t, ch, "choices", 0, "finish_reason"); f != nil {
			finish = f
		}
	}
	if text.String() != "Hello from fake-openai! You" || finish != "length" {
		t.Errorf("streamed %q finish %v", text.String(), finish)
	}
}

func TestOpenAIModelsAndNotFound(t *testing.T) {
	_, url := newTest(t, OpenAI)
	r := do(t, OpenAI, "GET", url+"/v1/models", "", nil)
	m := r.json(t)
	if r.Status != 200 || get(t, m, "object") != "list" || get(t, m, "data", 0, "object") != "model" || get(t, m, "data", 0, "id") == "" {
		t.Errorf("models %d %s", r.Status, r.Body)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/v1/nope"}, {"GET", "/v1/chat/completions"}} {
		r := do(t, OpenAI, c.method, url+c.path, "", nil)
		if r.Status != 404 {
			t.Errorf("%s %s: %d", c.method, c.path, r.Status)
		}
		assertOpenAIError(t, r, "invalid_request_error", nil)
	}
}
