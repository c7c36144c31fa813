package storedid

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
)

func TestSealOpen(t *testing.T) {
	s := New(strings.Repeat("s", 32))
	other := New(strings.Repeat("t", 32))
	a, b := Owner{1}, Owner{2}
	sealed := s.Seal(a, "resp_abc")
	if !strings.HasPrefix(sealed, "resp_abc_w") || len(sealed) != len("resp_abc_w")+32 {
		t.Fatalf("sealed = %q", sealed)
	}
	flip := []byte(sealed)
	flip[len(flip)-1] ^= 1
	tests := []struct {
		name   string
		s      *Sealer
		o      Owner
		id     string
		wantOK bool
	}{
		{"own id", s, a, sealed, true},
		{"another key's id", s, b, sealed, false},
		{"anonymous", s, Owner{}, sealed, false},
		{"another secret (replica misconfigured)", other, a, sealed, false},
		{"the provider's id", s, a, "resp_abc", false},
		{"tag changed", s, a, string(flip), false},
		{"tag only", s, a, sealed[len("resp_abc"):], false},
		{"empty", s, a, "", false},
		{"short", s, a, "_w0", false},
		{"not hex", s, a, "resp_abc_w" + strings.Repeat("z", 32), false},
	}
	for _, tt := range tests {
		id, ok := tt.s.Open(tt.o, tt.id)
		if ok != tt.wantOK || (ok && id != "resp_abc") {
			t.Errorf("%s: Open = %q, %v; want ok=%v", tt.name, id, ok, tt.wantOK)
		}
	}
}

func TestSealResponse(t *testing.T) {
	s := New(strings.Repeat("s", 32))
	o := Owner{7}
	tests := []struct {
		name, body, prefix string
		wantID, wantPrev   string // "" when unchanged
	}{
		{"response", `{"id":"resp_1","object":"response","previous_response_id":"resp_0","output":[{"id":"msg_1"}]}`, "", s.Seal(o, "resp_1"), s.Seal(o, "resp_0")},
		{"no previous", `{"id":"resp_1","object":"response","previous_response_id":null}`, "", s.Seal(o, "resp_1"), ""},
		{"event", `{"type":"response.created","response":{"id":"resp_1","object":"response"}}`, "response.", s.Seal(o, "resp_1"), ""},
		{"delta event", `{"type":"response.output_text.delta","item_id":"msg_1","delta":"hi"}`, "response.", "", ""},
		{"error body", `{"error":{"message":"x","id":"resp_1"}}`, "", "", ""},
	}
	for _, tt := range tests {
		out := s.SealResponse([]byte(tt.body), o, tt.prefix)
		if tt.wantID == "" {
			if string(out) != tt.body {
				t.Errorf("%s: changed to %s", tt.name, out)
			}
			continue
		}
		if got := gjson.GetBytes(out, tt.prefix+"id").Str; got != tt.wantID {
			t.Errorf("%s: id %q, want %q", tt.name, got, tt.wantID)
		}
		if tt.wantPrev != "" && gjson.GetBytes(out, tt.prefix+"previous_response_id").Str != tt.wantPrev {
			t.Errorf("%s: previous_response_id not sealed: %s", tt.name, out)
		}
		if strings.Contains(tt.body, "msg_1") && gjson.GetBytes(out, "output.0.id").Str != "msg_1" {
			t.Errorf("%s: item id changed: %s", tt.name, out)
		}
	}
}

type passStream struct{}

func (passStream) Translate(dst, chunk []byte, _ bool) ([]byte, error) {
	return append(dst, chunk...), nil
}
func (passStream) Usage() provider.Usage { return provider.Usage{PromptTokens: 3} }

// TestStream: ids are sealed in every lifecycle event, whatever the chunk
// boundaries; other events pass unchanged.
func TestStream(t *testing.T) {
	s := New(strings.Repeat("s", 32))
	o := Owner{9}
	in := "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"object\":\"response\"}}\n\n" +
		": keep-alive\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"delta\":\"hi\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"previous_response_id\":\"resp_0\"}}\n\n"
	want := strings.NewReplacer(`"resp_1"`, `"`+s.Seal(o, "resp_1")+`"`, `"resp_0"`, `"`+s.Seal(o, "resp_0")+`"`, ": keep-alive\n\n", "").Replace(in)
	for _, size := range []int{1, 7, 64, len(in)} {
		st := s.NewStream(passStream{}, o)
		var out []byte
		for i := 0; i < len(in); i += size {
			var err error
			out, err = st.Translate(out, []byte(in[i:min(i+size, len(in))]), false)
			if err != nil {
				t.Fatal(err)
			}
		}
		out, _ = st.Translate(out, nil, true)
		if string(out) != want {
			t.Errorf("chunks of %d:\n got %q\nwant %q", size, out, want)
		}
		if st.Usage().PromptTokens != 3 {
			t.Errorf("usage not the inner stream's")
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := New(strings.Repeat("s", 32))
	o := Owner{1}
	sealed := s.Seal(o, "resp_68af0c2b1d5c8190a2b7e3c4d5f60718293a4b5c6d7e8f90")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Open(o, sealed); !ok {
			b.Fatal("not ok")
		}
	}
}

// BenchmarkStream: the cost of sealing a Responses stream of 200 deltas,
// per stream, on top of the pass-through.
func BenchmarkStream(b *testing.B) {
	s := New(strings.Repeat("s", 32))
	life := func(typ string) string {
		return "event: " + typ + "\ndata: {\"type\":\"" + typ + "\",\"response\":{\"id\":\"resp_68af0c2b1d5c8190\",\"object\":\"response\",\"output\":[]}}\n\n"
	}
	var in strings.Builder
	in.WriteString(life("response.created"))
	for range 200 {
		in.WriteString("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"delta\":\" word\"}\n\n")
	}
	in.WriteString(life("response.completed"))
	chunk := []byte(in.String())
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		st := s.NewStream(passStream{}, Owner{1})
		out, _ = st.Translate(out[:0], chunk, true)
	}
}
