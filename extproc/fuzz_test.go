package extproc

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

func fuzzServer(f *testing.F) *Server {
	s := New(Options{})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzRouterRequest: any client body ends either routed or with a
// well-formed OpenAI error, never a panic.
func FuzzRouterRequest(f *testing.F) {
	s := fuzzServer(f)
	f.Add("/v1/chat/completions", []byte(`{"model":"claude","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add("/v1/embeddings", []byte(`{"model":"gpt-4o-mini","input":"x"}`))
	f.Add("/v1/chat/completions", []byte(`{"model":"openai/`))
	f.Add("/v1/messages", []byte(`{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}`))
	f.Add("/v1/messages/count_tokens", []byte(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`))
	f.Add("/v1/responses", []byte(`{"model":"gpt-4o-mini","input":"hi"}`))
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		r := &routerStream{s: s, rt: s.Runtime()}
		resp := handleRequest(context.Background(), r, path, string(body), nil)
		if ir := resp.GetImmediateResponse(); ir != nil {
			// count_tokens is the one request answered with a 200 here.
			ok := ir.GetStatus().GetCode() >= 400 || (path == "/v1/messages/count_tokens" && ir.GetStatus().GetCode() == 200)
			if !json.Valid(ir.GetBody()) || !ok {
				t.Fatalf("bad error reply %d %s", ir.GetStatus().GetCode(), ir.GetBody())
			}
			return
		}
		if resp.GetRequestBody() == nil {
			t.Fatalf("unexpected reply %v", resp)
		}
	})
}

// FuzzRouterResponse feeds arbitrary upstream bytes, streamed or buffered,
// through both providers' response paths.
func FuzzRouterResponse(f *testing.F) {
	s := fuzzServer(f)
	f.Add("claude", true, []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"), uint8(3), "200")
	f.Add("gpt-4o-mini", false, []byte(`{"choices":[],"usage":{"prompt_tokens":1}}`), uint8(0), "200")
	f.Add("claude", false, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"x"}}`), uint8(0), "529")
	f.Fuzz(func(t *testing.T, model string, stream bool, body []byte, split uint8, status string) {
		if model != "claude" {
			model = "gpt-4o-mini"
		}
		r := &routerStream{s: s, rt: s.Runtime()}
		extra := ""
		if stream {
			extra = `"stream":true,`
		}
		resp := handleRequest(context.Background(), r, "/v1/chat/completions", `{"model":"`+model+`",`+extra+`"messages":[{"role":"user","content":"hi"}]}`, nil)
		if resp.GetRequestBody() == nil {
			t.Fatalf("not routed: %v", resp)
		}
		ct := "application/json"
		if stream {
			ct = "text/event-stream"
		}
		r.handle(context.Background(), &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headerMap(":status", status, "content-type", ct),
		}}})
		n := int(split)%16 + 1
		for len(body) > 0 {
			k := min(n, len(body))
			r.handle(context.Background(), &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: body[:k]}}})
			body = body[k:]
			if !stream {
				break
			}
		}
		r.handle(context.Background(), &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{EndOfStream: true}}})
	})
}
