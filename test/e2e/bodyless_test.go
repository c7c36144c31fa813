package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestBodylessRequestsNeverReachAProvider: a request without a body gets
// its answer from the extproc at the request headers (the router-level
// filter SENDs them), in the ingress's error shape, even when the client
// names a backend itself; no provider sees it.
func TestBodylessRequestsNeverReachAProvider(t *testing.T) {
	st := startStack(t)
	tests := []struct {
		method, path string
		hdr          map[string]string
		wantStatus   int
		wantShape    string // a JSON path the error body must have
	}{
		{"POST", "/v1/chat/completions", nil, 400, "error.message"},
		{"POST", "/v1/chat/completions", map[string]string{"x-weir-backend": "fake-openai"}, 400, "error.message"},
		{"GET", "/v1/chat/completions", map[string]string{"x-weir-backend": "fake-openai", "authorization": "Bearer sk-client"}, 405, "error.message"},
		{"DELETE", "/v1/embeddings", nil, 405, "error.message"},
		{"POST", "/v1/messages", nil, 400, "error.type"},
		{"GET", "/v1/nope", map[string]string{"x-weir-backend": "fake-anthropic"}, 404, "error.message"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			for _, f := range st.Fake {
				f.Reset()
			}
			req, err := http.NewRequest(tt.method, st.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || !gjson.GetBytes(b, tt.wantShape).Exists() || !strings.HasPrefix(resp.Header.Get("content-type"), "application/json") {
				t.Errorf("status %d content-type %q body %s", resp.StatusCode, resp.Header.Get("content-type"), b)
			}
			for kind, f := range st.Fake {
				if n := len(f.Requests()); n != 0 {
					t.Errorf("%v fake got %d requests", kind, n)
				}
			}
		})
	}
}
