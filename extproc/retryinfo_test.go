package extproc

import (
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestRouterRetryInfo: a buffered 429 whose body carries Google's
// RetryInfo, and no Retry-After header, gets Retry-After set with the body
// reply; a provider's own header is never overridden.
func TestRouterRetryInfo(t *testing.T) {
	c, _ := newTestClient(t)
	const retryBody = `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`
	tests := []struct {
		name    string
		headers []string
		body    string
		want    string // "" = no retry-after in the body reply
	}{
		{"retry info", []string{":status", "429", "content-type", "application/json"}, retryBody, "2"},
		{"provider header kept", []string{":status", "429", "content-type", "application/json", "retry-after", "5"}, retryBody, ""},
		{"no retry info", []string{":status", "429", "content-type", "application/json"}, `{"error":{"code":429,"message":"quota"}}`, ""},
		{"not a 429", []string{":status", "503", "content-type", "application/json"}, retryBody, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := routedStream(t, c, "gpt-4o-mini", "")
			roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: headerMap(tt.headers...),
			}}})
			resp := roundTrip(t, st, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: []byte(tt.body), EndOfStream: true,
			}}})
			h := mutated(resp.GetResponseBody().GetResponse().GetHeaderMutation())
			if got := h["retry-after"]; got != tt.want {
				t.Errorf("retry-after = %q, want %q (headers %v)", got, tt.want, h)
			}
		})
	}
}
