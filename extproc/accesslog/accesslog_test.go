package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogLine(t *testing.T) {
	tests := []struct {
		name       string
		bodies     bool
		wantFields map[string]any
		wantAbsent []string
	}{
		{"bodies off", false, map[string]any{"request_id": "r1", "model": "m", "status": float64(200), "prompt_tokens": float64(3)}, []string{"request_body", "response_body"}},
		{"bodies on", true, map[string]any{"request_body": `{"messages":"secret prompt"}`, "response_body": "ok"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := &Logger{L: slog.New(slog.NewJSONHandler(&buf, nil)), Bodies: tt.bodies}
			l.Log(context.Background(), &Entry{
				RequestID: "r1", Model: "m", Status: 200, PromptTokens: 3, Latency: 1500 * time.Microsecond,
				RequestBody: []byte(`{"messages":"secret prompt"}`), ResponseBody: []byte("ok"),
			})
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("not one JSON line: %v: %s", err, buf.String())
			}
			for k, v := range tt.wantFields {
				if rec[k] != v {
					t.Errorf("%s = %v, want %v", k, rec[k], v)
				}
			}
			for _, k := range tt.wantAbsent {
				if _, ok := rec[k]; ok {
					t.Errorf("%s present: %s", k, buf.String())
				}
			}
			if !tt.bodies && strings.Contains(buf.String(), "secret") {
				t.Error("body leaked with bodies off")
			}
		})
	}
}

func TestClipKeepsUTF8(t *testing.T) {
	b := []byte(strings.Repeat("a", MaxBodyBytes-1) + "é")
	got := clip(b)
	if !strings.HasSuffix(got, "…[truncated]") || strings.Contains(got, "\xc3…") {
		t.Errorf("clip cut a rune: %q", got[len(got)-20:])
	}
}

func BenchmarkLog(b *testing.B) {
	l := &Logger{L: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	e := &Entry{RequestID: "8a5f0c1e-6a5b-4b8e-9a53-3c2b2b9c9d1a", Method: "POST", Path: "/v1/chat/completions", Endpoint: "chat", Model: "gpt-4o-mini", Backend: "openai", Status: 200, PromptTokens: 310, CompletionTokens: 64, Latency: 1234 * time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(context.Background(), e)
	}
}
