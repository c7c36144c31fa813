package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestAccessLogLine runs one request through the router-level handler and
// checks the line the server writes once it is closed: buffered lines are
// flushed by Close, and credentials never appear.
func TestAccessLogLine(t *testing.T) {
	var buf bytes.Buffer
	s := New(Options{AccessLog: &buf})
	if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := &routerStream{s: s, rt: s.Runtime()}
	handleRequest(ctx, r, "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"authorization": "Bearer sk-client-secret", "x-api-key": "sk-other-secret"})
	r.handle(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: headerMap(":status", "200", "content-type", "application/json"),
	}}})
	r.handle(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
		Body: []byte(benchResponses["gpt-4o-mini"]), EndOfStream: true,
	}}})
	r.finish(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || strings.Count(line, "\n") != 1 {
		t.Fatalf("want one JSON line, got %q (%v)", line, err)
	}
	want := map[string]any{
		"msg": "access", "request_id": "req-1", "method": "POST", "path": "/v1/chat/completions",
		"endpoint": "chat", "model": "gpt-4o-mini", "status": float64(200),
		"prompt_tokens": float64(310), "completion_tokens": float64(64),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %#v, want %#v", k, rec[k], v)
		}
	}
	// Weir's own id, not the client's x-request-id, is the spend id.
	if id, _ := rec["reservation_id"].(string); len(id) != 32 || id == "req-1" {
		t.Errorf("reservation_id = %q, want Weir's own 32-hex id", id)
	}
	if strings.Contains(line, "secret") || strings.Contains(line, "messages") {
		t.Errorf("credential or body in the access log: %s", line)
	}
}
