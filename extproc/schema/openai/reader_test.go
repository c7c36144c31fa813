package openai

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
)

// recorder writes each visit as one line, so a test reads what a
// translator would be told.
type recorder struct{ lines []string }

func (r *recorder) add(format string, a ...any) { r.lines = append(r.lines, fmt.Sprintf(format, a...)) }

func (r *recorder) System(c gjson.Result) { r.add("system %s", c.Raw) }
func (r *recorder) Turn(role Role)        { r.add("turn %d", role) }
func (r *recorder) Text(s gjson.Result)   { r.add("text %s", s.Raw) }
func (r *recorder) Image(i, j int, u string, user bool) error {
	r.add("image %d.%d %s user=%v", i, j, u, user)
	return nil
}
func (r *recorder) File(i, j int, d string) error { r.add("file %d.%d %s", i, j, d); return nil }
func (r *recorder) Audio(i, j int, p gjson.Result, user bool) error {
	r.add("audio %d.%d user=%v", i, j, user)
	return nil
}
func (r *recorder) ToolCall(id, name gjson.Result, args string) {
	r.add("call %s %s %s", id.Raw, name.Raw, args)
}
func (r *recorder) ToolResult(i int, id, c gjson.Result) error {
	r.add("result %d %s %s", i, id.Raw, c.Raw)
	return nil
}

func TestReadMessages(t *testing.T) {
	tests := []struct {
		name, msgs string
		want       []string
		err        error // errors.Is target
		msg        string
	}{
		{
			name: "every kind of visit",
			msgs: `[{"role":"developer","content":[{"type":"text","text":"be brief"}]},
				{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:x"}},{"type":"file","file":{"file_data":"d"}},{"type":"input_audio"}]},
				{"role":"assistant","content":"ok","tool_calls":[{"id":"c1","function":{"name":"f","arguments":"  {\"a\":1} "}},{"id":"c2","type":"function","function":{"name":"g"}}]},
				{"role":"tool","tool_call_id":"c1","content":"r"}]`,
			want: []string{
				`system [{"type":"text","text":"be brief"}]`,
				`turn 0`, `text "hi"`, `image 1.2 data:x user=true`, `file 1.3 d`, `audio 1.4 user=true`,
				`turn 1`, `text "ok"`, `call "c1" "f" {"a":1}`, `call "c2" "g" {}`,
				`turn 2`, `result 3 "c1" "r"`,
			},
		},
		{name: "assistant image is the visitor's to refuse", msgs: `[{"role":"assistant","content":[{"type":"image_url","image_url":7}]}]`,
			want: []string{`turn 1`, `image 0.0  user=false`}},
		{name: "not an object", msgs: `[1]`, err: errs.ErrInvalidRequest, msg: "messages[0] must be an object"},
		{name: "no role", msgs: `[{"content":"x"}]`, err: errs.ErrInvalidRequest, msg: "messages[0].role is required"},
		{name: "function role", msgs: `[{"role":"function"}]`, err: errs.ErrUnsupported, msg: "deprecated function role"},
		{name: "unknown role", msgs: `[{"role":"bot"}]`, err: errs.ErrInvalidRequest, msg: `role "bot" is not one of`},
		{name: "system image", msgs: `[{"role":"system","content":[{"type":"image_url"}]}]`, err: errs.ErrInvalidRequest, msg: "messages[0].content[0]: system content parts must be text"},
		{name: "bad content", msgs: `[{"role":"user","content":5}]`, err: errs.ErrInvalidRequest, msg: "must be a string, an array of parts or null"},
		{name: "unknown part", msgs: `[{"role":"user","content":[{"type":"video"}]}]`, err: errs.ErrInvalidRequest, msg: `content[0].type "video"`},
		{name: "text not string", msgs: `[{"role":"user","content":[{"type":"refusal","refusal":1}]}]`, err: errs.ErrInvalidRequest, msg: "content[0].refusal must be a string"},
		{name: "user image url", msgs: `[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]`, err: errs.ErrInvalidRequest, msg: "image_url.url must be a string"},
		{name: "assistant file", msgs: `[{"role":"assistant","content":[{"type":"file"}]}]`, err: errs.ErrInvalidRequest, msg: "files are allowed in user messages only"},
		{name: "file id", msgs: `[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]`, err: errs.ErrUnsupported, msg: "without inline file_data"},
		{name: "tool without id", msgs: `[{"role":"tool","content":"x"}]`, err: errs.ErrInvalidRequest, msg: "messages[0].tool_call_id is required"},
		{name: "call args not object", msgs: `[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]`, err: errs.ErrInvalidRequest, msg: "arguments must be a JSON object"},
		{name: "call type", msgs: `[{"role":"assistant","tool_calls":[{"id":"a","type":"custom"}]}]`, err: errs.ErrUnsupported, msg: `tool_calls[0].type "custom"`},
		{name: "call without name", msgs: `[{"role":"assistant","tool_calls":[{"id":"a","function":{}}]}]`, err: errs.ErrInvalidRequest, msg: "function.name is required"},
		{name: "tool_calls not array", msgs: `[{"role":"assistant","tool_calls":{}}]`, err: errs.ErrInvalidRequest, msg: "messages[0].tool_calls must be an array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			err := ReadMessages(gjson.Parse(tc.msgs), &r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want %v containing %q", err, tc.err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Join(r.lines, "\n"), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("visits:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestAppendSystem(t *testing.T) {
	sys := []gjson.Result{gjson.Parse(`"a"`), gjson.Parse(`""`), gjson.Parse(`[{"type":"text","text":"b"},{"type":"text","text":""}]`)}
	if got := string(AppendSystem([]byte("x"), sys, `,"s":[`, `{"t":`, `]`)); got != `x,"s":[{"t":"a"},{"t":"b"}]` {
		t.Errorf("AppendSystem = %s", got)
	}
	if got := string(AppendSystem([]byte("x"), sys[1:2], `,"s":[`, `{"t":`, `]`)); got != "x" {
		t.Errorf("AppendSystem of empty texts = %s, want nothing added", got)
	}
}

func TestParseDataURL(t *testing.T) {
	tests := []struct {
		in, media, data string
		ok              bool
	}{
		{"data:image/PNG;base64,AAA", "image/png", "AAA", true},
		{"DATA:application/pdf;name=x;base64,QQ==", "application/pdf", "QQ==", true},
		{"data:;base64,AAA", "", "", false},
		{"data:image/png,AAA", "", "", false},
		{"data:image/png;base64,", "", "", false},
		{"https://x/y.png", "", "", false},
		{"data:", "", "", false},
	}
	for _, tc := range tests {
		media, data, ok := ParseDataURL(tc.in)
		if media != tc.media || data != tc.data || ok != tc.ok {
			t.Errorf("ParseDataURL(%q) = %q, %q, %v; want %q, %q, %v", tc.in, media, data, ok, tc.media, tc.data, tc.ok)
		}
	}
}
