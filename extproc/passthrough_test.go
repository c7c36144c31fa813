package extproc

import (
	"context"
	"os"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestOpenAIUnknownFieldsPassThrough: an OpenAI client talking to an
// OpenAI-format backend gets no translation: fields Weir does not know
// reach the provider untouched, and the provider's new response fields
// reach the client, buffered and streamed.
func TestOpenAIUnknownFieldsPassThrough(t *testing.T) {
	s := New(Options{})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name, path, body string
		ct, resp         string
	}{
		{"chat", "/v1/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","x_part_field":[1]}],"prediction":{"type":"content","content":"x"},"x_future_knob":{"a":true},"modalities":["text"]}`,
			"application/json",
			`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok","annotations":[],"x_new":1},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"completion_tokens_details":{"reasoning_tokens":0,"x_new_tokens":2}},"service_tier":"default","system_fingerprint":"fp_1"}`},
		{"chat stream", "/v1/chat/completions",
			`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true,"x_opt":1},"messages":[{"role":"user","content":"hi"}],"x_future_knob":1}`,
			"text/event-stream",
			"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\",\"x_new\":true}}],\"obfuscation\":\"abc\"}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\ndata: [DONE]\n\n"},
		{"responses", "/v1/responses",
			`{"model":"gpt-4o-mini","input":"hi","store":false,"x_future_knob":1,"reasoning":{"effort":"low","x":1}}`,
			"application/json",
			`{"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"ok","x_new":1}]}],"usage":{"input_tokens":3,"output_tokens":1,"total_tokens":4},"x_new":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &routerStream{s: s, rt: s.Runtime()}
			resp := handleRequest(ctx, r, tt.path, tt.body, map[string]string{"content-length": "100"})
			cr := resp.GetRequestBody().GetResponse()
			if cr == nil {
				t.Fatalf("not routed: %v", resp)
			}
			if cr.GetBodyMutation() != nil {
				t.Errorf("the request body was rewritten: %s", cr.GetBodyMutation().GetBody())
			}
			r.handle(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: headerMap(":status", "200", "content-type", tt.ct),
			}}})
			out, _ := r.handle(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: []byte(tt.resp), EndOfStream: true,
			}}})
			if bm := out.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
				t.Errorf("the response body was rewritten: %v", bm)
			}
			r.finish(ctx)
			if u := r.resp.Usage; u.PromptTokens != 3 || u.CompletionTokens != 1 {
				t.Errorf("usage %+v", u)
			}
		})
	}
}
