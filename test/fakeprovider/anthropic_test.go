package fakeprovider

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const anTools = `"tools":[
 {"name":"first","description":"d","input_schema":{"type":"object",
   "properties":{"s":{"type":"string"},"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"},
     "a":{"type":"array"},"o":{"type":"object"},"e":{"enum":[3,4]}},
   "required":["s","n","i","b","a","o","e"]}},
 {"name":"second","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`

const anFirstArgs = `{"s":"test","n":1,"i":1,"b":true,"a":[],"o":{},"e":3}`

func TestAnthropicMessagesNonStream(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		hdr       map[string]string
		wantText  string
		wantTool  string
		wantArgs  string
		wantStop  string
		wantIn    int
		wantOut   int
		wantRead  int
		wantWrite int
	}{
		{
			name:     "text with system prompt",
			body:     `{"model":"claude-x","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":"hello there"}]}`,
			wantText: "Hello from fake-anthropic! You said: hello there", wantStop: "end_turn", wantIn: (3 + 2) + (3 + 2), wantOut: 7,
		},
		{
			name: "multi-turn with block content and system blocks",
			body: `{"model":"claude-x","max_tokens":100,"system":[{"type":"text","text":"a b"},{"type":"text","text":"c"}],"messages":[
				{"role":"user","content":[{"type":"text","text":"one"}]},
				{"role":"assistant","content":"two words"},
				{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}},{"type":"text","text":"three"},{"type":"text","text":"four"}]}]}`,
			wantText: "Hello from fake-anthropic! You said: three four", wantStop: "end_turn",
			wantIn: (3 + 3) + (3 + 1) + (3 + 2) + (3 + 2), wantOut: 7,
		},
		{
			name:     "max_tokens cuts the reply",
			body:     `{"model":"claude-x","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`,
			wantText: "Hello from", wantStop: "max_tokens", wantIn: 4, wantOut: 2,
		},
		{
			name:     "exact-usage and cache tokens",
			body:     `{"model":"claude-x","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`,
			hdr:      map[string]string{BehaviorHeader: "exact-usage, cache-tokens=100,20"},
			wantText: "Hello from fake-anthropic! You said: hi lorem lorem lorem", wantStop: "end_turn",
			wantIn: 4, wantOut: 9, wantRead: 100, wantWrite: 20,
		},
		{
			name:     "tool call to the first tool",
			body:     `{"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"go"}],` + anTools + `}`,
			wantTool: "first", wantArgs: anFirstArgs, wantStop: "tool_use", wantIn: 4, wantOut: 2,
		},
		{
			name:     "forced tool",
			body:     `{"model":"claude-x","max_tokens":100,"tool_choice":{"type":"tool","name":"second"},"messages":[{"role":"user","content":"go"}],` + anTools + `}`,
			wantTool: "second", wantArgs: `{"city":"test"}`, wantStop: "tool_use", wantIn: 4, wantOut: 2,
		},
		{
			name:     "tool_choice none",
			body:     `{"model":"claude-x","max_tokens":100,"tool_choice":{"type":"none"},"messages":[{"role":"user","content":"go"}],` + anTools + `}`,
			wantText: "Hello from fake-anthropic! You said: go", wantStop: "end_turn", wantIn: 4, wantOut: 6,
		},
		{
			name: "tool result answered with text",
			body: `{"model":"claude-x","max_tokens":100,"messages":[
				{"role":"user","content":"weather"},
				{"role":"assistant","content":[{"type":"text","text":"checking"},{"type":"tool_use","id":"toolu_1","name":"second","input":{"city":"Paris"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"18 degrees"}]}]}],` + anTools + `}`,
			wantText: "Hello from fake-anthropic! Tool result: 18 degrees", wantStop: "end_turn",
			wantIn: (3 + 1) + (3 + 3) + (3 + 2), wantOut: 7,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTest(t, Anthropic)
			r := do(t, Anthropic, "POST", url+"/v1/messages", tc.body, tc.hdr)
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if got := r.Header.Get("request-id"); got != "req_fake000001" {
				t.Errorf("request-id %q", got)
			}
			wantReset := fixedNow.Add(time.Minute).Format(time.RFC3339)
			for _, h := range []string{"requests", "tokens"} {
				if r.Header.Get("anthropic-ratelimit-"+h+"-limit") == "" || r.Header.Get("anthropic-ratelimit-"+h+"-remaining") == "" ||
					r.Header.Get("anthropic-ratelimit-"+h+"-reset") != wantReset {
					t.Errorf("rate-limit headers for %s: %v", h, r.Header)
				}
			}
			m := r.json(t)
			if get(t, m, "type") != "message" || get(t, m, "role") != "assistant" || get(t, m, "id") != "msg_fake000001" ||
				get(t, m, "model") != "claude-x" || get(t, m, "stop_sequence") != nil {
				t.Errorf("envelope %s", r.Body)
			}
			if get(t, m, "stop_reason") != tc.wantStop {
				t.Errorf("stop_reason %v, want %s", get(t, m, "stop_reason"), tc.wantStop)
			}
			content := get(t, m, "content").([]any)
			if len(content) != 1 {
				t.Fatalf("content %v", content)
			}
			if tc.wantText != "" {
				if get(t, content[0], "type") != "text" || get(t, content[0], "text") != tc.wantText {
					t.Errorf("content %v, want text %q", content[0], tc.wantText)
				}
			} else {
				b, _ := json.Marshal(get(t, content[0], "input"))
				var want any
				_ = json.Unmarshal([]byte(tc.wantArgs), &want)
				if get(t, content[0], "type") != "tool_use" || get(t, content[0], "id") != "toolu_fake000001" ||
					get(t, content[0], "name") != tc.wantTool || !reflect.DeepEqual(get(t, content[0], "input"), want) {
					t.Errorf("tool_use %v (input %s), want %s %s", content[0], b, tc.wantTool, tc.wantArgs)
				}
			}
			u := get(t, m, "usage")
			if get(t, u, "input_tokens") != float64(tc.wantIn) || get(t, u, "output_tokens") != float64(tc.wantOut) ||
				get(t, u, "cache_read_input_tokens") != float64(tc.wantRead) || get(t, u, "cache_creation_input_tokens") != float64(tc.wantWrite) {
				t.Errorf("usage %v, want in %d out %d read %d write %d", u, tc.wantIn, tc.wantOut, tc.wantRead, tc.wantWrite)
			}
			if n := len(s.Requests()); n != 1 {
				t.Errorf("%d requests recorded", n)
			}
		})
	}
}

func TestAnthropicMessagesStream(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		hdr      map[string]string
		wantText string
		wantArgs string
		wantStop string
		wantIn   int
		wantOut  int
		wantRead int
	}{
		{name: "text",
			body:     `{"model":"claude-x","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello there"}]}`,
			hdr:      map[string]string{BehaviorHeader: "cache-tokens=7,0"},
			wantText: "Hello from fake-anthropic! You said: hello there", wantStop: "end_turn", wantIn: 5, wantOut: 7, wantRead: 7},
		{name: "tool use",
			body:     `{"model":"claude-x","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"go"}],` + anTools + `}`,
			wantArgs: anFirstArgs, wantStop: "tool_use", wantIn: 4, wantOut: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newTest(t, Anthropic)
			r := do(t, Anthropic, "POST", url+"/v1/messages", tc.body, tc.hdr)
			if r.Status != 200 || r.ReadErr != nil {
				t.Fatalf("status %d err %v: %s", r.Status, r.ReadErr, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("Content-Type %q", ct)
			}
			evs := parseSSE(t, r.Body)
			var names []string
			var text, args strings.Builder
			var deltas int
			for _, ev := range evs {
				d := decodeJSON(t, ev.Data)
				if d["type"] != ev.Name {
					t.Errorf("event %q carries type %v", ev.Name, d["type"])
				}
				if len(names) == 0 || names[len(names)-1] != ev.Name {
					names = append(names, ev.Name)
				}
				switch ev.Name {
				case "message_start":
					msg := get(t, d, "message")
					if get(t, msg, "id") != "msg_fake000001" || get(t, msg, "stop_reason") != nil || len(get(t, msg, "content").([]any)) != 0 ||
						get(t, msg, "usage", "input_tokens") != float64(tc.wantIn) {
						t.Errorf("message_start %s", ev.Data)
					}
					if get(t, msg, "usage", "cache_read_input_tokens") != float64(tc.wantRead) {
						t.Errorf("message_start usage %s", ev.Data)
					}
				case "content_block_start":
					cb := get(t, d, "content_block")
					if tc.wantArgs != "" {
						if get(t, cb, "type") != "tool_use" || get(t, cb, "id") != "toolu_fake000001" || get(t, cb, "name") != "first" ||
							len(get(t, cb, "input").(map[string]any)) != 0 {
							t.Errorf("content_block_start %s", ev.Data)
						}
					} else if get(t, cb, "type") != "text" || get(t, cb, "text") != "" {
						t.Errorf("content_block_start %s", ev.Data)
					}
				case "content_block_delta":
					delta := get(t, d, "delta")
					switch get(t, delta, "type") {
					case "text_delta":
						text.WriteString(get(t, delta, "text").(string))
					case "input_json_delta":
						args.WriteString(get(t, delta, "partial_json").(string))
					}
					deltas++
				case "message_delta":
					if get(t, d, "delta", "stop_reason") != tc.wantStop || get(t, d, "usage", "output_tokens") != float64(tc.wantOut) {
						t.Errorf("message_delta %s", ev.Data)
					}
				}
			}
			want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
			if !reflect.DeepEqual(names, want) {
				t.Errorf("event sequence %v, want %v", names, want)
			}
			if text.String() != tc.wantText || args.String() != tc.wantArgs {
				t.Errorf("text %q args %q, want %q %q", text.String(), args.String(), tc.wantText, tc.wantArgs)
			}
			if deltas < 3 {
				t.Errorf("only %d deltas", deltas)
			}
		})
	}
}

// assertAnthropicError checks {"type":"error","error":{"type","message"},"request_id"}.
func assertAnthropicError(t *testing.T, r result, wantType string) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	m := r.json(t)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"error", "request_id", "type"}) || m["type"] != "error" {
		t.Errorf("error body %s", r.Body)
	}
	if m["request_id"] != r.Header.Get("request-id") || r.Header.Get("request-id") == "" {
		t.Errorf("request_id %v vs header %q", m["request_id"], r.Header.Get("request-id"))
	}
	e, _ := m["error"].(map[string]any)
	if len(e) != 2 || e["type"] != wantType || e["message"] == "" {
		t.Errorf("error %v, want type %s", e, wantType)
	}
	return e
}

func TestAnthropicValidation(t *testing.T) {
	user := `{"role":"user","content":"x"}`
	cases := []struct {
		name    string
		body    string
		hdr     map[string]string
		wantMsg string
	}{
		{"missing anthropic-version", `{"model":"m","max_tokens":5,"messages":[` + user + `]}`, map[string]string{"anthropic-version": ""}, "anthropic-version"},
		{"bad JSON", `{"model":`, nil, "JSON"},
		{"missing model", `{"max_tokens":5,"messages":[` + user + `]}`, nil, "model: Field required"},
		{"missing max_tokens", `{"model":"m","messages":[` + user + `]}`, nil, "max_tokens: Field required"},
		{"fractional max_tokens", `{"model":"m","max_tokens":1.5,"messages":[` + user + `]}`, nil, "valid integer"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,"messages":[` + user + `]}`, nil, "greater than or equal to 1"},
		{"missing messages", `{"model":"m","max_tokens":5}`, nil, "messages: Field required"},
		{"empty messages", `{"model":"m","max_tokens":5,"messages":[]}`, nil, "at least one message"},
		{"system role in messages", `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"s"},` + user + `]}`, nil, "messages.0.role"},
		{"tool role in messages", `{"model":"m","max_tokens":5,"messages":[` + user + `,{"role":"tool","content":"s"}]}`, nil, "messages.1.role"},
		{"consecutive user turns", `{"model":"m","max_tokens":5,"messages":[` + user + `,` + user + `]}`, nil, "alternate"},
		{"empty user content", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""}]}`, nil, "non-empty content"},
		{"empty text block", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":""}]}]}`, nil, "text content blocks must be non-empty"},
		{"content wrong type", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]}`, nil, "messages.0.content"},
		{"block without type", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"a"}]}]}`, nil, "type: Field required"},
		{"orphan tool_result", `{"model":"m","max_tokens":5,"messages":[` + user + `,{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"r"}]}]}`, nil, "toolu_9"},
		{"unanswered tool_use", `{"model":"m","max_tokens":5,"messages":[` + user + `,{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},` + user + `]}`, nil, "toolu_1"},
		{"trailing unanswered tool_use", `{"model":"m","max_tokens":5,"messages":[` + user + `,{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]}]}`, nil, "toolu_1"},
		{"tool_use in user message", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}`, nil, "assistant messages"},
		{"bad system", `{"model":"m","max_tokens":5,"system":{"text":"x"},"messages":[` + user + `]}`, nil, "system"},
		{"tool without schema", `{"model":"m","max_tokens":5,"tools":[{"name":"f"}],"messages":[` + user + `]}`, nil, "input_schema"},
		{"forced unknown tool", `{"model":"m","max_tokens":5,"tool_choice":{"type":"tool","name":"zz"},"messages":[` + user + `],` + anTools + `}`, nil, "zz"},
		{"bad tool_choice", `{"model":"m","max_tokens":5,"tool_choice":{"type":"sometimes"},"messages":[` + user + `],` + anTools + `}`, nil, "tool_choice"},
		{"exact-usage fine but unknown behaviour", `{"model":"m","max_tokens":5,"messages":[` + user + `]}`, map[string]string{BehaviorHeader: "exact-usage,sloow"}, "sloow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newTest(t, Anthropic)
			r := do(t, Anthropic, "POST", url+"/v1/messages", tc.body, tc.hdr)
			if r.Status != 400 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			e := assertAnthropicError(t, r, "invalid_request_error")
			if msg, _ := e["message"].(string); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q lacks %q", msg, tc.wantMsg)
			}
		})
	}

	// Accepted edge cases: an empty final assistant message (prefill) and a
	// tool_use answered in the next message.
	_, url := newTest(t, Anthropic)
	for _, body := range []string{
		`{"model":"m","max_tokens":5,"messages":[` + user + `,{"role":"assistant","content":""}]}`,
		`{"model":"m","max_tokens":5,"messages":[` + user + `,{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1"}]}]}`,
	} {
		if r := do(t, Anthropic, "POST", url+"/v1/messages", body, nil); r.Status != 200 {
			t.Errorf("%s: status %d %s", body, r.Status, r.Body)
		}
	}
}

func TestAnthropicStatusBehavior(t *testing.T) {
	cases := []struct {
		status   int
		wantType string
	}{
		{400, "invalid_request_error"},
		{401, "authentication_error"},
		{403, "permission_error"},
		{404, "not_found_error"},
		{409, "invalid_request_error"},
		{413, "request_too_large"},
		{429, "rate_limit_error"},
		{500, "api_error"},
		{503, "api_error"},
		{529, "overloaded_error"},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			_, url := newTest(t, Anthropic)
			r := do(t, Anthropic, "POST", url+"/v1/messages", `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}`,
				map[string]string{BehaviorHeader: "status=" + strconv.Itoa(tc.status)})
			if r.Status != tc.status {
				t.Fatalf("status %d", r.Status)
			}
			assertAnthropicError(t, r, tc.wantType)
			if tc.status == 429 {
				if r.Header.Get("retry-after") != "1" || r.Header.Get("anthropic-ratelimit-requests-remaining") != "0" ||
					r.Header.Get("anthropic-ratelimit-requests-limit") == "" ||
					r.Header.Get("anthropic-ratelimit-requests-reset") != fixedNow.Add(time.Second).Format(time.RFC3339) ||
					r.Header.Get("anthropic-ratelimit-tokens-remaining") == "" {
					t.Errorf("429 headers %v", r.Header)
				}
			} else if r.Header.Get("retry-after") != "" {
				t.Errorf("retry-after on %d", tc.status)
			}
		})
	}
}

func TestAnthropicRequireKey(t *testing.T) {
	cases := []struct {
		name, key, bearer string
		want              int
		wantMsg           string
	}{
		{"missing", "", "", 401, "x-api-key header is required"},
		{"wrong", "sk-ant-wrong", "", 401, "invalid x-api-key"},
		{"bearer is not x-api-key", "", "Bearer sk-ant-right", 401, "x-api-key header is required"},
		{"right", "sk-ant-right", "", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newTest(t, Anthropic)
			s.RequireKey("sk-ant-right")
			r := do(t, Anthropic, "POST", url+"/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`,
				map[string]string{"x-api-key": tc.key, "Authorization": tc.bearer})
			if r.Status != tc.want {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if tc.want == 401 {
				if e := assertAnthropicError(t, r, "authentication_error"); e["message"] != tc.wantMsg {
					t.Errorf("message %v", e["message"])
				}
			}
		})
	}
}

func TestAnthropicStreamError(t *testing.T) {
	_, url := newTest(t, Anthropic)
	r := do(t, Anthropic, "POST", url+"/v1/messages", `{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x"}]}`,
		map[string]string{BehaviorHeader: "stream-error"})
	if r.Status != 200 || r.ReadErr != nil {
		t.Fatalf("status %d err %v", r.Status, r.ReadErr)
	}
	evs := parseSSE(t, r.Body)
	var names []string
	for _, ev := range evs {
		names = append(names, ev.Name)
	}
	want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "error"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	last := decodeJSON(t, evs[len(evs)-1].Data)
	if last["type"] != "error" || get(t, last, "error", "type") != "overloaded_error" || get(t, last, "error", "message") != "Overloaded" {
		t.Errorf("error event %s", evs[len(evs)-1].Data)
	}
}

func TestAnthropicCountTokensAndModels(t *testing.T) {
	_, url := newTest(t, Anthropic)
	r := do(t, Anthropic, "POST", url+"/v1/messages/count_tokens", `{"model":"m","system":"s t","messages":[{"role":"user","content":"a b c"}]}`, nil)
	if r.Status != 200 || get(t, r.json(t), "input_tokens") != float64((3+2)+(3+3)) {
		t.Errorf("count_tokens %d %s", r.Status, r.Body)
	}
	r = do(t, Anthropic, "GET", url+"/v1/models", "", nil)
	m := r.json(t)
	if r.Status != 200 || get(t, m, "data", 0, "type") != "model" || get(t, m, "has_more") != false || get(t, m, "first_id") != get(t, m, "data", 0, "id") {
		t.Errorf("models %d %s", r.Status, r.Body)
	}
	r = do(t, Anthropic, "POST", url+"/v1/complete", `{}`, nil)
	if r.Status != 404 {
		t.Errorf("unknown route status %d", r.Status)
	}
	assertAnthropicError(t, r, "not_found_error")
}
