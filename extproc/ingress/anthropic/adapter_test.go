package anthropic

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
)

func TestAdapterStreamError(t *testing.T) {
	a := NewAdapter(nil)
	tests := []struct {
		err      error
		wantType string
	}{
		{fmt.Errorf("%w: cut", errs.ErrUpstreamBadReply), "api_error"},
		{fmt.Errorf("%w: slow down", errs.ErrRateLimited), "rate_limit_error"},
		{fmt.Errorf("%w: bad", errs.ErrInvalidRequest), "invalid_request_error"},
	}
	for _, tt := range tests {
		got := string(a.AppendStreamError([]byte("event: ping\ndata: {}\n\n"), tt.err))
		rest, ok := strings.CutPrefix(got, "event: ping\ndata: {}\n\nevent: error\ndata: ")
		if !ok || !strings.HasSuffix(rest, "\n\n") {
			t.Fatalf("%v: %q", tt.err, got)
		}
		ev := gjson.Parse(strings.TrimSpace(rest))
		if ev.Get("type").Str != "error" || ev.Get("error.type").Str != tt.wantType || !strings.Contains(ev.Get("error.message").Str, tt.err.Error()[strings.Index(tt.err.Error(), ":")+2:]) {
			t.Errorf("%v: %s", tt.err, rest)
		}
	}
}

func TestAdapterCanonicalAndCount(t *testing.T) {
	a := NewAdapter(nil)
	body := []byte(`{"model":"claude","max_tokens":10,"stop_sequences":["END"],"messages":[{"role":"user","content":"hi"}]}`)
	out, err := a.Canonical(body)
	if err != nil {
		t.Fatal(err)
	}
	if gjson.GetBytes(out, "max_completion_tokens").Int() != 10 || gjson.GetBytes(out, "stop.0").Str != "END" || gjson.GetBytes(out, "messages.0.content").Str != "hi" {
		t.Errorf("canonical body %s", out)
	}
	n, err := a.CountTokens([]byte(`{"model":"claude","messages":[{"role":"user","content":"hello world"}]}`))
	if err != nil || gjson.GetBytes(n, "input_tokens").Int() <= 0 {
		t.Errorf("count %s, %v", n, err)
	}
}
