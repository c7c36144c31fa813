package sse

import (
	"strings"
	"testing"
)

type got struct{ name, data, id string }

func collect(t *testing.T, chunks []string, flush bool) []got {
	t.Helper()
	var p Parser
	var out []got
	for _, c := range chunks {
		if err := p.Feed([]byte(c)); err != nil {
			t.Fatal(err)
		}
		for {
			ev, ok := p.Next()
			if !ok {
				break
			}
			out = append(out, got{string(ev.Name), string(ev.Data), string(ev.ID)})
		}
	}
	if flush {
		if ev, ok := p.Flush(); ok {
			out = append(out, got{string(ev.Name), string(ev.Data), string(ev.ID)})
		}
	}
	return out
}

func TestParser(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		flush  bool
		want   []got
	}{
		{"one event", []string{"data: {\"a\":1}\n\n"}, false, []got{{"", `{"a":1}`, ""}}},
		{"split everywhere", strings.Split("event: message_start\ndata: {\"x\":2}\n\n", ""), false, []got{{"message_start", `{"x":2}`, ""}}},
		{"two in one chunk", []string{"data: a\n\ndata: b\n\n"}, false, []got{{"", "a", ""}, {"", "b", ""}}},
		{"crlf", []string{"event: e\r\ndata: x\r\n\r\n"}, false, []got{{"e", "x", ""}}},
		{"multi-line data", []string{"data: a\ndata: b\nid: 7\n\n"}, false, []got{{"", "a\nb", "7"}}},
		{"comment ping", []string{": ping\n\ndata: z\n\n"}, false, []got{{"", "", ""}, {"", "z", ""}}},
		{"no space after colon", []string{"data:x\n\n"}, false, []got{{"", "x", ""}}},
		{"unterminated kept", []string{"data: a\n\ndata: b"}, false, []got{{"", "a", ""}}},
		{"unterminated flushed", []string{"data: a\n\ndata: b"}, true, []got{{"", "a", ""}, {"", "b", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := collect(t, tt.chunks, tt.flush)
			if len(g) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %+v", len(g), g, tt.want)
			}
			for i := range g {
				if g[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, g[i], tt.want[i])
				}
			}
		})
	}
}

func TestAppendEventRoundTrip(t *testing.T) {
	b := AppendEvent(nil, "content_block_delta", []byte("line1\nline2"))
	g := collect(t, []string{string(b)}, false)
	if len(g) != 1 || g[0].name != "content_block_delta" || g[0].data != "line1\nline2" {
		t.Fatalf("round trip = %+v", g)
	}
}

func FuzzParser(f *testing.F) {
	f.Add([]byte("event: a\ndata: b\n\n"), 3)
	f.Add([]byte("data: x\r\n\r\ndata: y\n\n: c\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split <= 0 {
			split = 1
		}
		var p Parser
		for len(in) > 0 {
			n := min(split, len(in))
			if err := p.Feed(in[:n]); err != nil {
				return
			}
			in = in[n:]
			for {
				if _, ok := p.Next(); !ok {
					break
				}
			}
		}
		p.Flush()
	})
}
