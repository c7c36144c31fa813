package fakeprovider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/config"
	wprovider "github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/bedrock"
)

type brFrame struct {
	MessageType, Type string // Type: event or exception type
	Payload           string
}

// doBedrock sends a (by default SigV4-signed) request to the fake.
func doBedrock(t *testing.T, base, path, body string, sign bool, service string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if sign {
		sum := sha256.Sum256([]byte(body))
		req.ContentLength = 0 // not signed; Go sets it again when sending
		creds := aws.Credentials{AccessKeyID: "AKIDFAKE", SecretAccessKey: "secret"}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", fixedNow); err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decodeFrames(t *testing.T, b []byte) []brFrame {
	t.Helper()
	var out []brFrame
	r := bytes.NewReader(b)
	dec := eventstream.NewDecoder()
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatalf("decoding frame: %v", err)
		}
		f := brFrame{MessageType: m.Headers.Get(":message-type").String(), Payload: string(m.Payload)}
		if v := m.Headers.Get(":event-type"); v != nil {
			f.Type = v.String()
		}
		if v := m.Headers.Get(":exception-type"); v != nil {
			f.Type = v.String()
		}
		out = append(out, f)
	}
	return out
}

func TestBedrockFake(t *testing.T) {
	srv := httptest.NewServer(New(Bedrock))
	defer srv.Close()
	const textBody = `{"messages":[{"role":"user","content":[{"text":"hello there"}]}],"system":[{"text":"be nice"}]}`
	const toolBody = `{"messages":[{"role":"user","content":[{"text":"weather?"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"a","inputSchema":{"json":{}}}},{"toolSpec":{"name":"b","inputSchema":{"json":{}}}}],"toolChoice":{"tool":{"name":"b"}}}}`
	tests := []struct {
		name, path, body string
		noSign           bool
		service          string
		behavior         string
		status           int
		errType          string // x-amzn-ErrorType prefix
		check            func(t *testing.T, body []byte)
	}{
		{name: "converse text", path: "/model/amazon.nova-lite-v1%3A0/converse", body: textBody, status: 200, check: func(t *testing.T, b []byte) {
			if got := gjson.GetBytes(b, "output.message.content.0.text").Str; got != "Hello from fake-bedrock! You said: hello there" {
				t.Errorf("text %q", got)
			}
			if gjson.GetBytes(b, "stopReason").Str != "end_turn" || gjson.GetBytes(b, "usage.inputTokens").Int() != 3+2+3+2 || gjson.GetBytes(b, "usage.outputTokens").Int() != 7 {
				t.Errorf("body %s", b)
			}
		}},
		{name: "invoke anthropic", path: "/model/anthropic.claude-sonnet-4-5-v1%3A0/invoke", body: `{"anthropic_version":"bedrock-2023-05-31","max_tokens":32,"messages":[{"role":"user","content":"hello there"}]}`, status: 200, check: func(t *testing.T, b []byte) {
			if gjson.GetBytes(b, "type").Str != "message" || gjson.GetBytes(b, "content.0.text").Str != "Hello from fake-bedrock! You said: hello there" || gjson.GetBytes(b, "model").Str != "anthropic.claude-sonnet-4-5-v1:0" {
				t.Errorf("body %s", b)
			}
		}},
		{name: "invoke anthropic needs anthropic_version", path: "/model/anthropic.claude-x/invoke", body: `{"max_tokens":32,"messages":[{"role":"user","content":"hi"}]}`, status: 400, errType: "ValidationException"},
		{name: "invoke anthropic refuses a model field", path: "/model/anthropic.claude-x/invoke", body: `{"anthropic_version":"bedrock-2023-05-31","model":"x","max_tokens":32,"messages":[{"role":"user","content":"hi"}]}`, status: 400, errType: "ValidationException"},
		{name: "invoke anthropic with anthropic_beta", path: "/model/anthropic.claude-x/invoke", body: `{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["context-1m-2025-08-07"],"max_tokens":32,"stop_sequences":["said"],"messages":[{"role":"user","content":"hello there"}]}`, status: 200, check: func(t *testing.T, b []byte) {
			if gjson.GetBytes(b, "stop_reason").Str != "stop_sequence" || gjson.GetBytes(b, "stop_sequence").Str != "said" || gjson.GetBytes(b, "content.0.text").Str != "Hello from fake-bedrock! You " {
				t.Errorf("body %s", b)
			}
		}},
		{name: "invoke anthropic_beta must be an array", path: "/model/anthropic.claude-x/invoke", body: `{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":"context-1m-2025-08-07","max_tokens":32,"messages":[{"role":"user","content":"hi"}]}`, status: 400, errType: "ValidationException"},
		{name: "invoke anthropic stream", path: "/model/anthropic.claude-x/invoke-with-response-stream", body: `{"anthropic_version":"bedrock-2023-05-31","max_tokens":32,"messages":[{"role":"user","content":"hello there"}]}`, status: 200, check: func(t *testing.T, b []byte) {
			fs := decodeFrames(t, b)
			var types []string
			for _, f := range fs {
				if f.Type != "chunk" {
					t.Fatalf("frame type %q", f.Type)
				}
				raw, err := base64.StdEncoding.DecodeString(gjson.Get(f.Payload, "bytes").Str)
				if err != nil {
					t.Fatal(err)
				}
				types = append(types, gjson.GetBytes(raw, "type").Str)
			}
			if len(types) < 4 || types[0] != "message_start" || types[len(types)-1] != "message_stop" {
				t.Errorf("events %v", types)
			}
		}},
		{name: "converse forced tool", path: "/model/m/converse", body: toolBody, status: 200, check: func(t *testing.T, b []byte) {
			if gjson.GetBytes(b, "output.message.content.0.toolUse.name").Str != "b" || gjson.GetBytes(b, "stopReason").Str != "tool_use" {
				t.Errorf("body %s", b)
			}
		}},
		{name: "max tokens", path: "/model/m/converse", body: `{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":2}}`, status: 200, check: func(t *testing.T, b []byte) {
			if gjson.GetBytes(b, "stopReason").Str != "max_tokens" || gjson.GetBytes(b, "output.message.content.0.text").Str != "Hello from" {
				t.Errorf("body %s", b)
			}
		}},
		{name: "cache tokens", path: "/model/m/converse", body: textBody, behavior: "cache-tokens=5,7", status: 200, check: func(t *testing.T, b []byte) {
			if gjson.GetBytes(b, "usage.cacheReadInputTokens").Int() != 5 || gjson.GetBytes(b, "usage.cacheWriteInputTokens").Int() != 7 {
				t.Errorf("body %s", b)
			}
		}},
		{name: "stream", path: "/model/m/converse-stream", body: textBody, status: 200, check: func(t *testing.T, b []byte) {
			fs := decodeFrames(t, b)
			var types []string
			var text string
			for _, f := range fs {
				types = append(types, f.Type)
				text += gjson.Get(f.Payload, "delta.text").Str
			}
			if text != "Hello from fake-bedrock! You said: hello there" || types[0] != "messageStart" || strings.Join(types[len(types)-3:], ",") != "contentBlockStop,messageStop,metadata" {
				t.Errorf("frames %+v", fs)
			}
		}},
		{name: "stream tool", path: "/model/m/converse-stream", body: toolBody, status: 200, check: func(t *testing.T, b []byte) {
			fs := decodeFrames(t, b)
			if fs[1].Type != "contentBlockStart" || gjson.Get(fs[1].Payload, "start.toolUse.name").Str != "b" || gjson.Get(fs[4].Payload, "stopReason").Str != "tool_use" {
				t.Errorf("frames %+v", fs)
			}
		}},
		{name: "stream error", path: "/model/m/converse-stream", body: textBody, behavior: "stream-error", status: 200, check: func(t *testing.T, b []byte) {
			fs := decodeFrames(t, b)
			last := fs[len(fs)-1]
			if len(fs) != 3 || last.MessageType != "exception" || last.Type != "modelStreamErrorException" {
				t.Errorf("frames %+v", fs)
			}
		}},
		{name: "titan", path: "/model/amazon.titan-embed-text-v2%3A0/invoke", body: `{"inputText":"a b c","dimensions":4}`, status: 200, check: func(t *testing.T, b []byte) {
			if len(gjson.GetBytes(b, "embedding").Array()) != 4 || gjson.GetBytes(b, "inputTextTokenCount").Int() != 3 {
				t.Errorf("body %s", b)
			}
		}},
		{name: "cohere", path: "/model/cohere.embed-english-v3/invoke", body: `{"texts":["a","b"],"input_type":"search_document"}`, status: 200, check: func(t *testing.T, b []byte) {
			if len(gjson.GetBytes(b, "embeddings").Array()) != 2 {
				t.Errorf("body %s", b)
			}
		}},
		{name: "status 429", path: "/model/m/converse", body: textBody, behavior: "status=429", status: 429, errType: "ThrottlingException"},
		{name: "status 424", path: "/model/m/converse", body: textBody, behavior: "status=424", status: 424, errType: "ModelErrorException"},
		{name: "status 503", path: "/model/m/converse", body: textBody, behavior: "status=503", status: 503, errType: "ServiceUnavailableException"},
		{name: "unsigned", path: "/model/m/converse", body: textBody, noSign: true, status: 403, errType: "UnrecognizedClientException"},
		{name: "wrong service", path: "/model/m/converse", body: textBody, service: "s3", status: 403, errType: "UnrecognizedClientException"},
		{name: "not alternating", path: "/model/m/converse", body: `{"messages":[{"role":"assistant","content":[{"text":"x"}]}]}`, status: 400, errType: "ValidationException"},
		{name: "blank text", path: "/model/m/converse", body: `{"messages":[{"role":"user","content":[{"text":" "}]}]}`, status: 400, errType: "ValidationException"},
		{name: "tool blocks need toolConfig", path: "/model/m/converse", body: `{"messages":[{"role":"user","content":[{"toolResult":{"toolUseId":"x","content":[]}}]}]}`, status: 400, errType: "ValidationException"},
		{name: "unknown op", path: "/model/m/nope", body: textBody, status: 404, errType: "UnknownOperationException"},
		{name: "bad behavior", path: "/model/m/converse", body: textBody, behavior: "explode", status: 400, errType: "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := tc.service
			if svc == "" {
				svc = "bedrock"
			}
			hdr := map[string]string{"content-type": "application/json"}
			if tc.behavior != "" {
				hdr[BehaviorHeader] = tc.behavior
			}
			resp, body := doBedrock(t, srv.URL, tc.path, tc.body, !tc.noSign, svc, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.HasPrefix(resp.Header.Get("x-amzn-RequestId"), "req_fake") {
				t.Errorf("x-amzn-RequestId %q", resp.Header.Get("x-amzn-RequestId"))
			}
			if tc.errType != "" {
				if !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), tc.errType+":") || gjson.GetBytes(body, "message").Str == "" {
					t.Errorf("error type %q body %s", resp.Header.Get("x-amzn-ErrorType"), body)
				}
			}
			if tc.status == 200 && strings.HasSuffix(tc.path, "converse-stream") && resp.Header.Get("content-type") != "application/vnd.amazon.eventstream" {
				t.Errorf("content-type %q", resp.Header.Get("content-type"))
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// TestBedrockFakeWithTranslator sends what the Bedrock translator builds
// (signed, escaped model id) to the fake and translates the reply back.
func TestBedrockFakeWithTranslator(t *testing.T) {
	fake := New(Bedrock)
	fake.RequireKey("AKIDWEIR")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	tr, err := bedrock.New(&config.Backend{Name: "b", Provider: "bedrock", BaseURL: srv.URL,
		AWS: &config.AWSAuth{Region: "us-east-1", AccessKeyID: "AKIDWEIR", SecretAccessKey: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		up, err := tr.TranslateRequest(&wprovider.Request{Endpoint: wprovider.EndpointChat, Model: "us.amazon.nova-lite-v1:0", Stream: stream,
			Body: []byte(`{"model":"nova","messages":[{"role":"system","content":"s"},{"role":"user","content":"ping pong"}]}`)})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", srv.URL+up.Path, bytes.NewReader(up.Body))
		for _, h := range up.Headers {
			req.Header.Set(h.Key, h.Value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if rec, _ := fake.Last(); rec.Path != "/model/us.amazon.nova-lite-v1:0/converse"+map[bool]string{true: "-stream"}[stream] {
			t.Errorf("fake saw path %q", rec.Path)
		}
		var text string
		if !stream {
			out, u, err := tr.TranslateResponse(&wprovider.Response{Endpoint: wprovider.EndpointChat, Status: 200, Body: body, Model: "nova"})
			if err != nil {
				t.Fatal(err)
			}
			text = gjson.GetBytes(out, "choices.0.message.content").Str
			if u.PromptTokens != 4+5 {
				t.Errorf("usage %+v", u)
			}
		} else {
			s := tr.NewStream(&wprovider.StreamInfo{Endpoint: wprovider.EndpointChat, Model: "nova"})
			out, err := s.Translate(nil, body, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range parseSSE(t, out) {
				if ev.Data != "[DONE]" {
					text += gjson.Get(ev.Data, "choices.0.delta.content").Str
				}
			}
		}
		if text != "Hello from fake-bedrock! You said: ping pong" {
			t.Errorf("stream=%v: text %q", stream, text)
		}
	}
}
