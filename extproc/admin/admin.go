// Package admin serves the extproc's operational HTTP endpoints: liveness,
// readiness and Prometheus metrics. It listens on its own address, never
// on the public port.
package admin

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the admin mux. notReady lists why the extproc cannot
// serve as configured (empty: ready); /readyz answers 503 with one reason
// per line while there is any. /healthz is liveness only: a Redis outage
// must make a replica unready, never restart it. profiling adds
// net/http/pprof under /debug/pprof/, for profiling before optimising.
func Handler(reg *prometheus.Registry, notReady func() []string, profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := notReady(); len(why) > 0 {
			http.Error(w, "not ready\n"+strings.Join(why, "\n"), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
