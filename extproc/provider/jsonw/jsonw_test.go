package jsonw

import (
	"encoding/json"
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
