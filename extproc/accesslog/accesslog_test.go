package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLogLine(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	base := Entry{
		Time: at, RequestID: "r1", Method: "POST", Path: "/v1/chat/completions", Endpoint: "chat",
		Model: "m", Backend: "openai", Status: 200, Stream: true, PromptTokens: 3, CompletionTokens: 4, CachedTokens: 1,
		Latency:     1500 * time.Microsecond,
		RequestBody: []byte(`{"messages":"secret prompt"}`), ResponseBody: []byte("ok"),
	}
	long := strings.Repeat("a", MaxBodyBytes-1) + "é" + "tail"
	tests := []struct {
		name       string
		bodies     bool
		edit       func(e *Entry)
		wantFields map[string]any
		wantAbsent []string
	}{
		{"bodies off", false, nil, map[string]any{
			"time": "2025-03-04T05:06:07.891Z", "level": "INFO", "msg": "access",
			"request_id": "r1", "method": "POST", "path": "/v1/chat/completions", "endpoint": "chat",
			"model": "m", "backend": "openai", "status": float64(200), "stream": true,
			"prompt_tokens": float64(3), "completion_tokens": float64(4), "cached_tokens": float64(1), "latency_ms": 1.5,
		}, []string{"request_body", "response_body", "error"}},
		{"bodies on", true, nil, map[string]any{"request_body": `{"messages":"secret prompt"}`, "response_body": "ok"}, nil},
		{"error", false, func(e *Entry) { e.Error = "upstream: \"bad\"\n\tline" }, map[string]any{"error": "upstream: \"bad\"\n\tline"}, nil},
		{"escapes", false, func(e *Entry) { e.Model = "a\x00b\x1f\\c\u2028d\u2029</script>&" },
			map[string]any{"model": "a\x00b\x1f\\c\u2028d\u2029</script>&"}, nil},
		{"invalid utf8", false, func(e *Entry) { e.Model = "x\xffy\xc3" }, map[string]any{"model": "x\ufffdy\ufffd"}, nil},
		{"whole ms latency", false, func(e *Entry) { e.Latency = 12 * time.Millisecond }, map[string]any{"latency_ms": float64(12)}, nil},
		{"sub ms latency", false, func(e *Entry) { e.Latency = 7 * time.Microsecond }, map[string]any{"latency_ms": 0.007}, nil},
		{"empty strings", false, func(e *Entry) { *e = Entry{Time: at} }, map[string]any{"request_id": "", "status": float64(0), "latency_ms": float64(0)}, nil},
		{"clipped body", true, func(e *Entry) { e.RequestBody = []byte(long); e.ResponseBody = nil },
			map[string]any{"request_body": strings.Repeat("a", MaxBodyBytes-1) + truncatedSuffix, "response_body": ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := &Logger{W: &buf, Bodies: tt.bodies}
			e := base
			if tt.edit != nil {
				tt.edit(&e)
			}
			l.Log(context.Background(), &e)
			line := buf.String()
			if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("not one line: %q", line)
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("not JSON: %v: %s", err, line)
			}
			for k, v := range tt.wantFields {
				if rec[k] != v {
					t.Errorf("%s = %#v, want %#v", k, rec[k], v)
				}
			}
			for _, k := range tt.wantAbsent {
				if _, ok := rec[k]; ok {
					t.Errorf("%s present: %s", k, line)
				}
			}
			if !tt.bodies && strings.Contains(line, "secret") {
				t.Error("body leaked with bodies off")
			}
		})
	}
}

func TestClipKeepsUTF8(t *testing.T) {
	b := []byte(strings.Repeat("a", MaxBodyBytes-1) + "é")
	got := string(appendBody(nil, b))
	if !strings.HasSuffix(got, truncatedSuffix+`"`) || strings.Contains(got, `\ufffd`) || !utf8.ValidString(got) {
		t.Errorf("clip cut a rune: %q", got[len(got)-20:])
	}
}

// FuzzAppendString checks the escaper against encoding/json: the output
// is one valid JSON string, with no raw control bytes, that decodes to
// what encoding/json's own encoding of the input decodes to.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\n\r\t\x00\x1f\x7f", "é€😀", "\xff\xfe", "\xe2\x80\xa8\xe2\x80\xa9", "a\xc3", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		for _, c := range out {
			if c < 0x20 {
				t.Fatalf("raw control byte %#x in %q", c, out)
			}
		}
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 out: %q", out)
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("not a JSON string: %v: %q", err, out)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("decoded %q, encoding/json gives %q", got, want)
		}
		if b := appendEscapedBytes(nil, []byte(s)); !bytes.Equal(b, out) {
			t.Fatalf("bytes and string escapes differ: %q vs %q", b, out)
		}
	})
}

// lockedBuffer is a bytes.Buffer safe for the sink's writer goroutine.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSinkCloseFlushesInOrder(t *testing.T) {
	for _, size := range []int{0, 64} { // default, and tiny so most writes hand off a full buffer
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var out lockedBuffer
			s := NewSink(&out, time.Hour, size) // the interval never fires
			var want strings.Builder
			for i := range 1000 {
				line := fmt.Sprintf("line %d\n", i)
				want.WriteString(line)
				if _, err := s.Write([]byte(line)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != want.String() {
				t.Fatalf("after Close: %d bytes, want %d", len(got), want.Len())
			}
			// Writes after Close go straight through.
			_, _ = s.Write([]byte("late\n"))
			if !strings.HasSuffix(out.String(), "line 999\nlate\n") {
				t.Error("write after Close lost")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSinkConcurrentWriters(t *testing.T) {
	var out lockedBuffer
	s := NewSink(&out, time.Millisecond, 256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				_, _ = fmt.Fprintf(s, "g%d-%d\n", g, i)
			}
		})
	}
	wg.Wait()
	_ = s.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	next := map[string]int{}
	for _, l := range lines {
		g, i, _ := strings.Cut(l, "-")
		if want := fmt.Sprint(next[g]); i != want {
			t.Fatalf("%s: got line %s, want %s (lines torn or reordered)", g, i, want)
		}
		next[g]++
	}
}

func TestSinkFlushesOnInterval(t *testing.T) {
	var out lockedBuffer
	s := NewSink(&out, time.Millisecond, 0)
	defer s.Close()
	_, _ = s.Write([]byte("x\n"))
	// No timing assertion: wait (bounded) for the interval flush.
	for deadline := time.Now().Add(10 * time.Second); out.String() == "" && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if out.String() != "x\n" {
		t.Fatalf("interval flush did not happen: %q", out.String())
	}
}

var benchEntry = &Entry{RequestID: "8a5f0c1e-6a5b-4b8e-9a53-3c2b2b9c9d1a", Method: "POST", Path: "/v1/chat/completions", Endpoint: "chat", Model: "gpt-4o-mini", Backend: "openai", Status: 200, PromptTokens: 310, CompletionTokens: 64, Latency: 1234 * time.Microsecond}

func BenchmarkLog(b *testing.B) {
	b.Run("discard", func(b *testing.B) {
		l := &Logger{W: io.Discard}
		b.ReportAllocs()
		for b.Loop() {
			l.Log(context.Background(), benchEntry)
		}
	})
	b.Run("sink", func(b *testing.B) {
		s := NewSink(io.Discard, 0, 0)
		defer s.Close()
		l := &Logger{W: s}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Log(context.Background(), benchEntry)
			}
		})
	})
}
