package openai

import (
	"strings"
	"testing"

	"github.com/weir-ai/weir/extproc/provider"
)

// TestStreamRedactsInBandErrors: an error an OpenAI-format provider sends
// inside a stream crosses the boundary as a buffered error body does:
// without the provider account's details. Every other event passes as
// received, whatever the chunking.
func TestStreamRedactsInBandErrors(t *testing.T) {
	chunk := "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
	chatErr := "data: {\"error\":{\"message\":\"Rate limit reached for gpt-4o in organization org-AbC123 on tokens per min\",\"type\":\"tokens\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n\n"
	respErr := "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"Incorrect API key provided: sk-proj-abcdEFGH1234\",\"param\":null,\"sequence_number\":3}\n\n"
	respFailed := "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"quota of project proj_Zz9 exceeded\"},\"usage\":{\"input_tokens\":1,\"output_tokens\":0,\"total_tokens\":1}}}\n\n"
	tests := []struct {
		name    string
		info    provider.StreamInfo
		in      string
		secrets []string
		keep    []string // must reach the client as sent
	}{
		{"chat, usage asked", provider.StreamInfo{Endpoint: provider.EndpointChat, IncludeUsage: true}, chunk + chatErr, []string{"org-AbC123"}, []string{chunk, "rate_limit_exceeded", "Rate limit reached for gpt-4o"}},
		{"chat, usage not asked", provider.StreamInfo{Endpoint: provider.EndpointChat}, chunk + chatErr, []string{"org-AbC123"}, []string{"rate_limit_exceeded"}},
		{"responses error event", provider.StreamInfo{Endpoint: provider.EndpointResponses}, respErr, []string{"sk-proj-abcdEFGH1234"}, []string{"event: error\n", `"sequence_number":3`}},
		{"responses failed", provider.StreamInfo{Endpoint: provider.EndpointResponses}, respFailed, []string{"proj_Zz9"}, []string{"event: response.failed\n", `"status":"failed"`}},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 7, 64, len(tt.in)} {
			s := NewStream(&tt.info)
			var out []byte
			var err error
			for i := 0; i < len(tt.in); i += size {
				out, err = s.Translate(out, []byte(tt.in[i:min(i+size, len(tt.in))]), false)
				if err != nil {
					t.Fatal(err)
				}
			}
			if out, err = s.Translate(out, nil, true); err != nil {
				t.Fatal(err)
			}
			for _, sec := range tt.secrets {
				if strings.Contains(string(out), sec) {
					t.Errorf("%s, chunks of %d: %q reached the client: %s", tt.name, size, sec, out)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(string(out), k) {
					t.Errorf("%s, chunks of %d: lost %q: %s", tt.name, size, k, out)
				}
			}
		}
	}
}

// FuzzStream: whatever an OpenAI-format provider streams, split anywhere,
// the pass-through never panics, and with usage asked for, a stream with
// no error in it reaches the client byte for byte (but for a blank tail
// after its last event).
func FuzzStream(f *testing.F) {
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n", 5, false)
	f.Add("data: {\"error\":{\"message\":\"org-x sk-abc\"}}\n\n", 3, true)
	f.Add("event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"proj_1\"}}}\r\n\r\n", 9, true)
	f.Fuzz(func(t *testing.T, in string, size int, responses bool) {
		if size <= 0 {
			size = 1
		}
		info := provider.StreamInfo{Endpoint: provider.EndpointChat, IncludeUsage: true}
		if responses {
			info.Endpoint = provider.EndpointResponses
		}
		s := NewStream(&info)
		var out []byte
		for i := 0; i < len(in); i += size {
			var err error
			if out, err = s.Translate(out, []byte(in[i:min(i+size, len(in))]), false); err != nil {
				return // an event too large to buffer
			}
		}
		out, _ = s.Translate(out, nil, true)
		// A blank tail, no event, may be dropped.
		if !strings.Contains(in, "error") && (!strings.HasPrefix(in, string(out)) || strings.TrimSpace(in[len(out):]) != "") {
			t.Errorf("changed a stream without errors:\n%q\n%q", in, out)
		}
	})
}
