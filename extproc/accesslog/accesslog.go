// Package accesslog writes one JSON line per request. It never writes
// credentials, and writes message bodies only when the config enables it.
//
// Lines are built by a hand-written appender (no reflection, no slog
// handler) into a pooled buffer and handed to a writer, normally a [Sink],
// which batches them so the request path does no I/O of its own.
package accesslog

import (
	"context"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// MaxBodyBytes caps each body written when body logging is on.
const MaxBodyBytes = 64 << 10

// truncatedSuffix marks a clipped body.
const truncatedSuffix = "…[truncated]"

// Entry is one request's record.
type Entry struct {
	// Time is when the line is written; zero means now.
	Time time.Time
	// RequestID is the x-request-id Envoy passed, for correlation.
	RequestID string
	// ReservationID is Weir's own random id for the request: its limits
	// reservation's id and its spend record's request_id.
	ReservationID    string
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
	// W receives one Write per line, each a complete JSON object ending in
	// a newline; nil disables the log. W must not keep the slice.
	W io.Writer
	// Bodies enables request/response bodies in the log.
	Bodies bool
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Log writes one line.
func (l *Logger) Log(_ context.Context, e *Entry) {
	if l == nil || l.W == nil {
		return
	}
	bp := linePool.Get().(*[]byte)
	b := AppendEntry((*bp)[:0], e, l.Bodies)
	_, _ = l.W.Write(b)
	if cap(b) <= 64<<10 { // do not pin the buffer of a huge body line
		*bp = b[:0]
		linePool.Put(bp)
	}
}

// AppendEntry appends e as one JSON line (with its newline) to dst. The
// shape matches what slog's JSON handler wrote before: time, level, msg,
// then the fields. Bodies are included only when bodies is true.
func AppendEntry(dst []byte, e *Entry, bodies bool) []byte {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	dst = append(dst, `{"time":"`...)
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","level":"INFO","msg":"access","request_id":`...)
	dst = AppendString(dst, e.RequestID)
	if e.ReservationID != "" {
		dst = append(dst, `,"reservation_id":`...)
		dst = AppendString(dst, e.ReservationID)
	}
	dst = append(dst, `,"method":`...)
	dst = AppendString(dst, e.Method)
	dst = append(dst, `,"path":`...)
	dst = AppendString(dst, e.Path)
	dst = append(dst, `,"endpoint":`...)
	dst = AppendString(dst, e.Endpoint)
	dst = append(dst, `,"model":`...)
	dst = AppendString(dst, e.Model)
	dst = append(dst, `,"backend":`...)
	dst = AppendString(dst, e.Backend)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, `,"stream":`...)
	dst = strconv.AppendBool(dst, e.Stream)
	dst = append(dst, `,"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, e.PromptTokens, 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, e.CompletionTokens, 10)
	dst = append(dst, `,"cached_tokens":`...)
	dst = strconv.AppendInt(dst, e.CachedTokens, 10)
	dst = append(dst, `,"latency_ms":`...)
	dst = appendMillis(dst, e.Latency)
	if e.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = AppendString(dst, e.Error)
	}
	if bodies {
		dst = append(dst, `,"request_body":`...)
		dst = appendBody(dst, e.RequestBody)
		dst = append(dst, `,"response_body":`...)
		dst = appendBody(dst, e.ResponseBody)
	}
	return append(dst, "}\n"...)
}

// appendMillis writes d in milliseconds with microsecond precision, as a
// JSON number ("1.5", "12", "-0.001").
func appendMillis(dst []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		dst = append(dst, '-')
		us = -us
	}
	dst = strconv.AppendInt(dst, us/1000, 10)
	if frac := us % 1000; frac != 0 {
		dst = append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
		for dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// appendBody writes a body as a JSON string, clipped to MaxBodyBytes
// without cutting a multi-byte character in half.
func appendBody(dst, b []byte) []byte {
	if len(b) <= MaxBodyBytes {
		return appendEscapedBytes(dst, b)
	}
	dst = appendEscapedBytes(dst, clip(b))
	// Replace the closing quote with the marker and close again.
	dst = append(dst[:len(dst)-1], truncatedSuffix...)
	return append(dst, '"')
}

// clip returns b cut to MaxBodyBytes, less a trailing partial rune.
func clip(b []byte) []byte {
	b = b[:MaxBodyBytes]
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if r, _ := utf8.DecodeRune(b[len(b)-i:]); r == utf8.RuneError {
				b = b[:len(b)-i]
			}
			break
		}
	}
	return b
}

// AppendString appends s as a quoted JSON string.
func AppendString(dst []byte, s string) []byte {
	return appendEscaped(dst, s)
}

// appendEscapedBytes is appendEscaped for a byte slice, without copying
// it: the string view does not outlive the call and b is not modified.
func appendEscapedBytes(dst, b []byte) []byte {
	return appendEscaped(dst, unsafe.String(unsafe.SliceData(b), len(b)))
}

const hex = "0123456789abcdef"

// safe[c] is true for ASCII bytes that need no escaping in a JSON string.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendEscaped appends s quoted as a JSON string with the escaping
// encoding/json uses less its HTML escapes: quotes, backslashes and control
// characters are escaped, invalid UTF-8 becomes U+FFFD, and U+2028/U+2029
// are escaped so the line is also valid JavaScript.
func appendEscaped(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
