// Package accesslog writes one JSON line per request with log/slog.
// It never writes credentials, and writes message bodies only when the
// config enables it.
package accesslog

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"
)

// MaxBodyBytes caps each body written when body logging is on.
const MaxBodyBytes = 64 << 10

// Entry is one request's record.
type Entry struct {
	RequestID        string
	Method           string
	Path             string
	Endpoint         string
	Model            string // as the client sent it
	Backend          string
	Status           int
	Stream           bool
	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64
	Latency          time.Duration
	Error            string
	// Bodies are logged only when Logger.Bodies is true.
	RequestBody  []byte
	ResponseBody []byte
}

// Logger writes access log lines.
type Logger struct {
	L *slog.Logger
	// Bodies enables request/response bodies in the log.
	Bodies bool
}

// Log writes one line.
func (l *Logger) Log(ctx context.Context, e *Entry) {
	if l == nil || l.L == nil {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request_id", e.RequestID),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.String("endpoint", e.Endpoint),
		slog.String("model", e.Model),
		slog.String("backend", e.Backend),
		slog.Int("status", e.Status),
		slog.Bool("stream", e.Stream),
		slog.Int64("prompt_tokens", e.PromptTokens),
		slog.Int64("completion_tokens", e.CompletionTokens),
		slog.Int64("cached_tokens", e.CachedTokens),
		slog.Float64("latency_ms", float64(e.Latency.Microseconds())/1000),
	)
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	if l.Bodies {
		attrs = append(attrs, slog.String("request_body", clip(e.RequestBody)), slog.String("response_body", clip(e.ResponseBody)))
	}
	l.L.LogAttrs(ctx, slog.LevelInfo, "access", attrs...)
}

func clip(b []byte) string {
	if len(b) <= MaxBodyBytes {
		return string(b)
	}
	b = b[:MaxBodyBytes]
	// Do not cut a multi-byte character in half.
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if r, _ := utf8.DecodeRune(b[len(b)-i:]); r == utf8.RuneError {
				b = b[:len(b)-i]
			}
			break
		}
	}
	return string(b) + "…[truncated]"
}
