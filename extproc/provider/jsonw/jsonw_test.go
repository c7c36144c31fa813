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
