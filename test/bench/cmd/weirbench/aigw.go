package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"

	"github.com/weir-ai/weir/test/bench"
)

// Server kinds on Envoy AI Gateway's message shape: "aigw" is its extproc
// binary (-aigw PATH), "null-aigw" the null floor played with AIGW's shape
// (five messages instead of Weir's four).
const (
	serverAIGW     = "aigw"
	serverNullAIGW = "null-aigw"
)

func isAIGW(name string) bool { return name == serverAIGW || name == serverNullAIGW }

// AIGWSummary compares Weir with Envoy AI Gateway for one config, both
// measured in the same run at the same concurrency.
type AIGWSummary struct {
	Config      string  `json:"config"`
	Kind        string  `json:"kind"`
	Concurrency int     `json:"concurrency"`
	WeirCPUus   float64 `json:"weir_cpu_us_per_req"`
	AIGWCPUus   float64 `json:"aigw_cpu_us_per_req"`
	Ratio       float64 `json:"weir_over_aigw_cpu"`
	WeirRSS     float64 `json:"weir_max_rss_mib"`
	AIGWRSS     float64 `json:"aigw_max_rss_mib"`
	// Over each one's own floor, when null and null-aigw were measured.
	WeirOverNull     *float64 `json:"weir_minus_null_cpu_us,omitempty"`
	AIGWOverNullAIGW *float64 `json:"aigw_minus_null_aigw_cpu_us,omitempty"`
}

// aigwTarget is issue 8's bound: Weir's extproc CPU per request at most
// 0.6x Envoy AI Gateway's for the same work.
const aigwTarget = 0.6

// measureAIGW runs one AIGW-shaped server kind for one Weir config: it
// pairs the config with test/bench/aigw/<name>.yaml, starts the server and
// measures it. A missing binary or paired config is a skip note, not an
// error.
func measureAIGW(ctx context.Context, o options, pin pinning, srvName, cfgPath string, p *bench.Profile, self, tmp string, rep *Report, seq *atomic.Uint64) ([]Row, string, error) {
	if srvName == serverAIGW && o.aigw == "" {
		return nil, "aigw: skipped: -aigw not given (build Envoy AI Gateway's cmd/extproc from its repository and pass its path; see test/bench/README.md)", nil
	}
	acfg := bench.AIGWConfigPath(cfgPath)
	if _, err := os.Stat(acfg); err != nil {
		return nil, fmt.Sprintf("%s/%s: skipped: no Envoy AI Gateway config %s", srvName, p.Name, acfg), nil
	}
	ap, err := bench.LoadAIGWProfile(acfg, p)
	if err != nil {
		return nil, "", err
	}
	d, err := bench.NewAIGWDriver(p, ap, srvName == serverAIGW)
	if err != nil {
		return nil, "", err
	}
	if rep.AIGW == nil {
		rep.AIGW, rep.AIGWSizes = map[string]*bench.AIGWProfile{}, map[string][]bench.MessageSize{}
	}
	rep.AIGW[p.Name], rep.AIGWSizes[p.Name] = ap, d.Sizes()
	sock := filepath.Join(tmp, srvName+"-"+p.Name+".sock")
	admin, err := freePort()
	if err != nil {
		return nil, "", err
	}
	srv := server{sock: sock, admin: admin}
	switch srvName {
	case serverAIGW:
		_, port, _ := net.SplitHostPort(admin)
		srv.argv = []string{o.aigw, "-configPath", acfg, "-extProcAddr", "unix://" + sock, "-adminPort", port, "-logLevel", "warn"}
		// DISABLE_PPROF: no pprof server on its fixed 127.0.0.1:6060.
		// OTEL_SDK_DISABLED: no OTel exporter even if the caller's
		// environment names one; its default (Prometheus metrics on the
		// admin port, no tracing) is unchanged.
		srv.env = []string{"DISABLE_PPROF=1", "OTEL_SDK_DISABLED=true"}
		// Its admin server has /health, not /readyz, and no Go runtime
		// collector (no go_memstats_mallocs_total). On SIGTERM it sleeps
		// 15s before stopping (cmd/extproc/main.go), so it is killed.
		srv.readyPath, srv.noAllocs, srv.stopSignal = "/health", true, syscall.SIGKILL
	case serverNullAIGW:
		srv.argv = []string{self, "null-server", "--listen", "unix://" + sock, "--admin", admin}
	}
	rows, err := measure(ctx, o, pin, srvName, p, d, srv, filepath.Join(tmp, srvName+"-"+p.Name+".stderr"), seq)
	return rows, "", err
}

func summarizeAIGW(rows []Row, conc int) []AIGWSummary {
	find := func(server, cfg string) *Row { return findRow(rows, server, cfg, conc) }
	var out []AIGWSummary
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Config] {
			continue
		}
		seen[r.Config] = true
		w, a := find("weir", r.Config), find(serverAIGW, r.Config)
		if w == nil || a == nil {
			continue
		}
		s := AIGWSummary{Config: r.Config, Kind: r.Kind, Concurrency: conc, WeirCPUus: w.CPUusPerReq, AIGWCPUus: a.CPUusPerReq, WeirRSS: w.MaxRSSMiB, AIGWRSS: a.MaxRSSMiB}
		if a.CPUusPerReq > 0 {
			s.Ratio = w.CPUusPerReq / a.CPUusPerReq
		}
		if n := find("null", r.Config); n != nil {
			v := w.CPUusPerReq - n.CPUusPerReq
			s.WeirOverNull = &v
		}
		if n := find(serverNullAIGW, r.Config); n != nil {
			v := a.CPUusPerReq - n.CPUusPerReq
			s.AIGWOverNullAIGW = &v
		}
		out = append(out, s)
	}
	return out
}

func printAIGW(w io.Writer, rep *Report) {
	if len(rep.AIGW) == 0 {
		return
	}
	fmt.Fprintf(w, "\nWeir over Envoy AI Gateway (server CPU per request, same run; target weir/aigw <= %.2f):\n", aigwTarget)
	if len(rep.AIGWSummary) == 0 {
		fmt.Fprintln(w, "  (no config has both a weir and an aigw measurement)")
	}
	for _, s := range rep.AIGWSummary {
		verdict := "met"
		if s.Ratio > aigwTarget || s.Ratio == 0 {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "  %-12s %-12s c=%-3d weir %.1f µs / aigw %.1f µs = x%.2f (%s); max rss weir %.1f vs aigw %.1f MiB",
			s.Config, s.Kind, s.Concurrency, s.WeirCPUus, s.AIGWCPUus, s.Ratio, verdict, s.WeirRSS, s.AIGWRSS)
		if s.WeirOverNull != nil && s.AIGWOverNullAIGW != nil {
			fmt.Fprintf(w, "; over own floor weir %+.1f µs, aigw %+.1f µs", *s.WeirOverNull, *s.AIGWOverNullAIGW)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nEnvoy AI Gateway message shape per request (router: request_headers, request_body, response_headers, response_body; upstream: request_headers with xDS attributes):")
	for _, name := range slices.Sorted(maps.Keys(rep.AIGWSizes)) {
		ap := rep.AIGW[name]
		fmt.Fprintf(w, "  %s (%s, backend %s %s):", name, filepath.Base(ap.ConfigPath), ap.Backend.Name, ap.Backend.Schema.Name)
		for _, m := range rep.AIGWSizes[name] {
			fmt.Fprintf(w, " %s %s %dB;", m.Filter, m.Phase, m.Bytes)
		}
		fmt.Fprintln(w)
		if ap.Note != "" {
			fmt.Fprintf(w, "    note: %s\n", ap.Note)
		}
	}
}
