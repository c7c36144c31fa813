package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReadyz: /readyz answers 503 with one line per reason while the
// extproc cannot serve as configured, and 200 "ok" otherwise; /healthz
// (liveness) stays 200 either way, so an outage never restarts the pod.
func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reasons []string
		status  int
		body    string
	}{
		{"ready", nil, 200, "ok\n"},
		{"keys not loaded", []string{"keys: not loaded"}, 503, "not ready\nkeys: not loaded\n"},
		{"two reasons", []string{"keys: not loaded", "limits: redis unreachable"}, 503, "not ready\nkeys: not loaded\nlimits: redis unreachable\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler(prometheus.NewRegistry(), func() []string { return tc.reasons }, false)
			for _, c := range []struct {
				path   string
				status int
				body   string
			}{{"/readyz", tc.status, tc.body}, {"/healthz", 200, "ok\n"}} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
				body, _ := io.ReadAll(rec.Result().Body)
				if rec.Code != c.status || string(body) != c.body {
					t.Errorf("%s: %d %q, want %d %q", c.path, rec.Code, body, c.status, c.body)
				}
			}
		})
	}
}
