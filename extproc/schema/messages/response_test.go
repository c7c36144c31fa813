package messages

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func TestErrorBodyTruncatesOnRuneBoundary(t *testing.T) {
	body := strings.Repeat("é", 1000) // 2000 bytes
	out := ErrorBody(503, []byte(body))
	msg := gjson.GetBytes(out, "error.message").Str
	if len(msg) > 1024 || !utf8.ValidString(msg) || !strings.HasPrefix(body, msg) {
		t.Errorf("bad truncation: %d bytes, valid %v", len(msg), utf8.ValidString(msg))
	}
	if gjson.GetBytes(out, "error.type").Str != "server_error" {
		t.Errorf("type %s", out)
	}
}
