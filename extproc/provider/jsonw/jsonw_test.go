package jsonw

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"nl\n\r\t", `"nl\n\r\t"`},
		{"\x01", `"\u0001"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"héllo ✓", `"héllo ✓"`},
	}
	for _, tt := range tests {
		if got := string(AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAppendCompactAsString(t *testing.T) {
	raw := "{ \"city\" : \"Paris \\\"x\\\"\" ,\n \"n\": [1, 2] }"
	out := AppendCompactAsString(nil, raw)
	var s string
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if s != `{"city":"Paris \"x\"","n":[1,2]}` {
		t.Errorf("compact = %s", s)
	}
}

func TestRawHelpers(t *testing.T) {
	r := gjson.Parse(`{"a":"x\ny","b":null,"c":""}`)
	if got := string(AppendRawString(nil, r.Get("a"))); got != `"x\ny"` {
		t.Errorf("AppendRawString = %s", got)
	}
	if RawStringBody(r.Get("a")) != `x\ny` || Present(r.Get("b")) || !Present(r.Get("a")) || !IsEmptyString(r.Get("c")) || IsNonEmptyString(r.Get("c")) {
		t.Error("raw helpers disagree with the input")
	}
	if View(nil) != "" || View([]byte("ab")) != "ab" {
		t.Error("View")
	}
}

// FuzzAppendString: the output is always valid JSON that decodes to the
// input (with invalid UTF-8 replaced, as encoding/json does).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\xff", "✓\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("round trip %q -> %q, want %q", s, got, w)
		}
	})
}

func TestTurns(t *testing.T) {
	type step struct {
		role string
		item string // "" opens the turn with no item
	}
	tests := []struct {
		name  string
		steps []step
		want  string
		count int
	}{
		{"alternating", []step{{"user", "1"}, {"assistant", "2"}, {"user", "3"}},
			`[{"role":"user","content":[1]},{"role":"assistant","content":[2]},{"role":"user","content":[3]}]`, 3},
		{"same role continues", []step{{"user", "1"}, {"user", "2"}},
			`[{"role":"user","content":[1,2]}]`, 1},
		{"empty turn dropped", []step{{"user", "1"}, {"assistant", ""}},
			`[{"role":"user","content":[1]}]`, 1},
		{"empty turn between one role reopens the last", []step{{"user", "1"}, {"assistant", ""}, {"user", "2"}},
			`[{"role":"user","content":[1,2]}]`, 1},
		{"nothing", []step{{"user", ""}}, `[]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tu := Turns{Key: "content"}
			out := []byte("[")
			for _, s := range tt.steps {
				out = tu.Open(out, s.role)
				if s.item != "" {
					out = append(tu.Item(out), s.item...)
				}
			}
			out = append(tu.Close(out), ']')
			if string(out) != tt.want || tu.Count() != tt.count {
				t.Errorf("got %s (%d turns), want %s (%d)", out, tu.Count(), tt.want, tt.count)
			}
		})
	}
}

func TestDuplicateKey(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	tests := []struct {
		body string
		dup  string
	}{
		{`{}`, ""},
		{`{"model":"a","stream":true}`, ""},
		{`{"model":"a","model":"b"}`, "model"},
		{`{"stream_options":{"include_usage":true},"stream_options":{"include_usage":false}}`, "stream_options"},
		// Escapes are compared unescaped: this is "model" twice.
		{`{"model":"a","mod\u0065l":"b"}`, "model"},
		// Nested objects are not this function's business.
		{`{"a":{"x":1,"x":2},"b":1}`, ""},
		{`{"a":1,"b":2,"a":3}`, "a"},
		{many(40, `"k3":0`), "k3"},
		{many(40, `"k39":0`), "k39"},
		{many(40, `"other":0`), ""},
	}
	for _, tt := range tests {
		dup, ok := DuplicateKey(gjson.Parse(tt.body))
		if dup != tt.dup || ok != (tt.dup != "") {
			t.Errorf("DuplicateKey(%.60s) = %q, %v; want %q", tt.body, dup, ok, tt.dup)
		}
	}
}

func TestKeysAllocFree(t *testing.T) {
	keys := []string{"model", "messages", "stream", "stream_options", "max_tokens", "temperature", "tools", "user"}
	n := testing.AllocsPerRun(100, func() {
		var s Keys
		for _, k := range keys {
			if s.Add(k) {
				t.Fatal("false duplicate")
			}
		}
	})
	if n != 0 {
		t.Errorf("Keys.Add allocates %v times for %d keys", n, len(keys))
	}
}
