package anthropic

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
)

func TestError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		typ    string
	}{
		{fmt.Errorf("%w: model %q is not served here", errs.ErrModelNotFound, "x"), 404, "not_found_error"},
		{errs.ErrUnauthorized, 401, "authentication_error"},
		{errs.ErrForbidden, 403, "permission_error"},
		{errs.ErrBodyTooLarge, 413, "request_too_large"},
		{errs.ErrRateLimited, 429, "rate_limit_error"},
		{errs.ErrUnavailable, 503, "overloaded_error"},
		{&errs.UpstreamError{Status: 529, Type: "server_error", Message: "Overloaded"}, 529, "overloaded_error"},
		{errors.New("dial tcp 10.0.0.1:443: secret detail"), 500, "api_error"},
	}
	for _, tc := range tests {
		status, body := Error(tc.err)
		checkErrorBody(t, body)
		if status != tc.status || gjson.GetBytes(body, "error.type").Str != tc.typ {
			t.Errorf("%v: got %d %s", tc.err, status, body)
		}
		if strings.Contains(string(body), "secret") {
			t.Errorf("internal detail leaked: %s", body)
		}
	}
}

type fixedEstimator struct{ calls int }

func (e *fixedEstimator) Tokens(model, text string) int {
	e.calls++
	if model != "m" {
		panic("model not passed")
	}
	return 10
}

func TestCountTokensEstimatorSwap(t *testing.T) {
	est := &fixedEstimator{}
	out, err := NewAdapter(est).CountTokens([]byte(`{"model":"m","system":"s","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// system 3+10, message 3+10, image 1600.
	if want := `{"input_tokens":1626}`; string(out) != want || est.calls != 2 {
		t.Errorf("got %s after %d calls, want %s", out, est.calls, want)
	}
}

func TestDefaultEstimator(t *testing.T) {
	for s, want := range map[string]int{"": 0, "a": 1, "abcd": 1, "abcde": 2, "天気": 2, "hi 天": 2} {
		if got := (DefaultEstimator{}).Tokens("", s); got != want {
			t.Errorf("%q: %d, want %d", s, got, want)
		}
	}
}

// TestStreamIgnoresAfterEnd: nothing is written after the final event.
func TestStreamIgnoresAfterEnd(t *testing.T) {
	s := NewAdapter(nil).NewStream("m", "r")
	out, err := s.Translate(nil, []byte("data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	more, err := s.Translate(out, []byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n"), true)
	if err != nil || len(more) != len(out) {
		t.Fatalf("output after end: %q %v", more[len(out):], err)
	}
	if err := validateEvents(out); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateKeys(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		dup        string // "" when accepted
	}{
		{"plain", `{"model":"claude","max_tokens":5,` + msgs + `}`, ""},
		{"model twice", `{"model":"gpt-4o-mini","max_tokens":5,` + msgs + `,"model":"claude"}`, `"model"`},
		{"escaped model twice", `{"model":"a","max_tokens":5,` + msgs + `,"mod\u0065l":"b"}`, `"model"`},
		{"max_tokens twice", `{"model":"claude","max_tokens":5,"max_tokens":50000,` + msgs + `}`, `"max_tokens"`},
		{"dropped field twice", `{"model":"claude","max_tokens":5,"service_tier":"auto","service_tier":"auto",` + msgs + `}`, `"service_tier"`},
	}
	tr := NewAdapter(nil)
	for _, tt := range tests {
		_, reqErr := tr.Canonical([]byte(tt.body))
		_, countErr := tr.CountTokens([]byte(tt.body))
		for what, err := range map[string]error{"Request": reqErr, "CountTokens": countErr} {
			switch {
			case tt.dup == "" && err != nil:
				t.Errorf("%s: %s refused: %v", tt.name, what, err)
			case tt.dup == "":
			case !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), "duplicate key "+tt.dup):
				t.Errorf("%s: %s err = %v, want invalid request naming %s", tt.name, what, err, tt.dup)
			}
		}
	}
}

func TestMaxTokensBound(t *testing.T) {
	tests := []struct {
		maxTokens string
		ok        bool
	}{
		{"16777216", true},
		{"16777217", false},
		{"2147483647", false},
		{"72057594037927936", false},
		{"1e30", false},
	}
	for _, tt := range tests {
		body := `{"model":"claude","max_tokens":` + tt.maxTokens + `,"messages":[{"role":"user","content":"hi"}]}`
		out, err := NewAdapter(nil).Canonical([]byte(body))
		if tt.ok {
			if err != nil || gjson.GetBytes(out, "max_completion_tokens").Raw != tt.maxTokens {
				t.Errorf("max_tokens %s: err %v, out %s", tt.maxTokens, err, out)
			}
			continue
		}
		if !errors.Is(err, errs.ErrInvalidRequest) || !strings.HasPrefix(strings.TrimPrefix(err.Error(), "invalid request: "), "max_tokens:") {
			t.Errorf("max_tokens %s: err = %v, want invalid request naming max_tokens", tt.maxTokens, err)
		}
	}
}
