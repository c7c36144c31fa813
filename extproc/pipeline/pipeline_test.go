package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/route"
	"github.com/weir-ai/weir/extproc/runtime"
)

func parse(ep provider.Endpoint, body string) (*Request, error) {
	r := &Request{Runtime: &runtime.Runtime{MaxBody: 1 << 20}, Endpoint: ep, Body: []byte(body)}
	return r, Parse{}.Request(context.Background(), r)
}

const msgs = `"messages":[{"role":"user","content":"hi"}]`

func TestParseDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, body string
		ep         provider.Endpoint
		dup        string // "" when the body is accepted
	}{
		{"plain chat", `{"model":"m",` + msgs + `}`, provider.EndpointChat, ""},
		{"model twice", `{"model":"a","model":"b",` + msgs + `}`, provider.EndpointChat, `"model"`},
		{"escaped model twice", `{"model":"a",` + msgs + `,"mod\u0065l":"b"}`, provider.EndpointChat, `"model"`},
		{"stream_options twice", `{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":false}}`, provider.EndpointChat, `"stream_options"`},
		{"include_usage twice", `{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, provider.EndpointChat, `"include_usage" in 'stream_options'`},
		{"max_tokens twice", `{"model":"m",` + msgs + `,"max_tokens":1,"max_tokens":100000}`, provider.EndpointChat, `"max_tokens"`},
		{"unknown key twice", `{"model":"m",` + msgs + `,"user":"a","user":"b"}`, provider.EndpointChat, `"user"`},
		{"nested duplicates are the provider's", `{"model":"m","messages":[{"role":"user","role":"user","content":"hi"}]}`, provider.EndpointChat, ""},
		{"embeddings", `{"model":"m","input":"a","input":"b"}`, provider.EndpointEmbeddings, `"input"`},
		{"completions", `{"model":"m","prompt":"a","prompt":"b"}`, provider.EndpointCompletions, `"prompt"`},
		{"responses", `{"model":"m","input":"a","max_output_tokens":5,"max_output_tokens":50000}`, provider.EndpointResponses, `"max_output_tokens"`},
	}
	for _, tt := range tests {
		_, err := parse(tt.ep, tt.body)
		switch {
		case tt.dup == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.dup == "":
		case !errors.Is(err, errs.ErrInvalidRequest):
			t.Errorf("%s: err = %v, want invalid request", tt.name, err)
		case !strings.Contains(err.Error(), "duplicate key "+tt.dup):
			t.Errorf("%s: err = %v, want it to name %s", tt.name, err, tt.dup)
		}
	}
}

func TestParseOutputLimit(t *testing.T) {
	tests := []struct {
		name string
		ep   provider.Endpoint
		body string // fields after "model"
		want int64
		bad  string // part of the error, "" when accepted
	}{
		{"chat max_tokens", provider.EndpointChat, msgs + `,"max_tokens":300`, 300, ""},
		{"chat prefers max_completion_tokens", provider.EndpointChat, msgs + `,"max_tokens":300,"max_completion_tokens":40`, 40, ""},
		{"chat ignores max_output_tokens", provider.EndpointChat, msgs + `,"max_output_tokens":300`, 0, ""},
		{"chat absent", provider.EndpointChat, msgs, 0, ""},
		{"chat negative", provider.EndpointChat, msgs + `,"max_tokens":-5`, 0, ""},
		{"chat string", provider.EndpointChat, msgs + `,"max_tokens":"9"`, 0, ""},
		{"chat at the ceiling", provider.EndpointChat, msgs + `,"max_tokens":16777216`, MaxOutputTokens, ""},
		{"chat 2^56", provider.EndpointChat, msgs + `,"max_tokens":72057594037927936`, 0, "'max_tokens' of 72057594037927936 exceeds"},
		{"chat max int64", provider.EndpointChat, msgs + `,"max_completion_tokens":9223372036854775807`, 0, "'max_completion_tokens' of 9223372036854775807"},
		{"chat 1e30", provider.EndpointChat, msgs + `,"max_tokens":1e30`, 0, "'max_tokens' of 1e30"},
		// max_tokens is forwarded too, so it is bounded even when
		// max_completion_tokens is what Weir reserves.
		{"chat huge max_tokens beside max_completion_tokens", provider.EndpointChat, msgs + `,"max_completion_tokens":10,"max_tokens":16777217`, 0, "'max_tokens' of 16777217"},
		{"responses max_output_tokens", provider.EndpointResponses, `"input":"hi","max_output_tokens":20000`, 20000, ""},
		{"responses ignores max_tokens", provider.EndpointResponses, `"input":"hi","max_tokens":20000`, 0, ""},
		{"responses 2^56", provider.EndpointResponses, `"input":"hi","max_output_tokens":72057594037927936`, 0, "'max_output_tokens' of 72057594037927936"},
		{"completions max_tokens", provider.EndpointCompletions, `"prompt":"hi","max_tokens":700`, 700, ""},
		{"completions 2^56", provider.EndpointCompletions, `"prompt":"hi","max_tokens":72057594037927936`, 0, "exceeds"},
		{"embeddings have no reply", provider.EndpointEmbeddings, `"input":"hi","max_tokens":72057594037927936`, 0, ""},
		{"messages max_tokens", provider.EndpointMessages, msgs + `,"max_tokens":1024`, 1024, ""},
		{"messages 2^56", provider.EndpointMessages, msgs + `,"max_tokens":72057594037927936`, 0, "'max_tokens' of 72057594037927936"},
		{"messages without messages", provider.EndpointMessages, `"max_tokens":5`, 0, "'messages' must be a non-empty array"},
		{"messages with empty messages", provider.EndpointMessages, `"messages":[],"max_tokens":5`, 0, "'messages' must be a non-empty array"},
	}
	for _, tt := range tests {
		r, err := parse(tt.ep, `{"model":"m",`+tt.body+`}`)
		if tt.bad != "" {
			if !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("%s: err = %v, want invalid request containing %q", tt.name, err, tt.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.MaxOutput != tt.want {
			t.Errorf("%s: MaxOutput = %d, want %d", tt.name, r.MaxOutput, tt.want)
		}
	}
}

func TestContextWindowBoundsOutput(t *testing.T) {
	m := &config.Model{Name: "m", ContextWindow: 1000}
	tests := []struct {
		ep     provider.Endpoint
		output int64
		ok     bool
	}{
		{provider.EndpointResponses, 1000, true},
		{provider.EndpointResponses, 1001, false},
		{provider.EndpointCompletions, 5000, false},
		{provider.EndpointChat, 900, true},
		{provider.EndpointChat, 1001, false},
		{provider.EndpointMessages, 1000, true},
		{provider.EndpointMessages, 1001, false},
	}
	for _, tt := range tests {
		r := &Request{Endpoint: tt.ep, Body: []byte(`{"x":1}`), MaxOutput: tt.output, Target: route.Target{Model: m, UpstreamModel: "gpt-4o-mini"}}
		err := ContextWindow{}.Request(context.Background(), r)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, errs.ErrContextLength)) {
			t.Errorf("endpoint %v, output %d: err = %v, want ok=%v", tt.ep, tt.output, err, tt.ok)
		}
	}
}

// TestParseAllocs: duplicate detection must not cost ordinary bodies an
// allocation beyond the model name's clone.
func TestParseAllocs(t *testing.T) {
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"temperature":0.2,"user":"u",` + msgs + `}`)
	r := &Request{Runtime: &runtime.Runtime{MaxBody: 1 << 20}, Endpoint: provider.EndpointChat, Body: body}
	n := testing.AllocsPerRun(100, func() {
		if err := (Parse{}).Request(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("Parse allocates %v times, want at most 1 (the model name)", n)
	}
}
