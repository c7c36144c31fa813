// Command weirbench measures Weir's extproc against a null ext_proc floor by
// playing Envoy's two ext_proc filters over gRPC, with each server in its
// own process so CPU and memory are measured per process.
//
//	go run ./test/bench/cmd/weirbench [-weir PATH] [-duration 5s] [-conc 1,16,64] [-out FILE]
//	weirbench null-server --listen ADDR --admin ADDR
//	weirbench soak [-duration 2m] [-every 10s] [-configs a.yaml,b.yaml]
//
// See test/bench/README.md for what each column means.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/weir-ai/weir/extproc/daemon"
	"github.com/weir-ai/weir/test/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "null-server" {
		if err := nullServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "weirbench null-server:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "soak" {
		code, err := soak(os.Args[2:])
		if err != nil {
			fmt.Fprintln(os.Stderr, "weirbench soak:", err)
			os.Exit(2)
		}
		os.Exit(code)
	}
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "weirbench:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// nullServer serves bench.NullServer with the same gRPC options as the
// daemon, plus /readyz and /metrics (Go runtime collectors, as Weir's
// admin endpoint has) on the admin address.
func nullServer(args []string) error {
	fs := flag.NewFlagSet("weirbench null-server", flag.ExitOnError)
	listen := fs.String("listen", "unix:///tmp/weirbench-null.sock", "gRPC listen `address`: host:port or unix:///path")
	adminAddr := fs.String("admin", "127.0.0.1:9013", "admin `address` for /readyz and /metrics")
	_ = fs.Parse(args)
	lis, err := daemon.Listen(*listen)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(daemon.MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	extprocv3.RegisterExternalProcessorServer(gs, bench.NullServer{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	al, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(al) }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); gs.Stop() }()
	err = gs.Serve(lis)
	_ = hs.Close()
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// defaultConfigs are the configs in test/bench run when -configs is not
// given, in this order.
var defaultConfigs = []string{"openai.yaml", "anthropic.yaml", "bedrock.yaml", "gemini.yaml", "keys-memory.yaml", "keys-redis.yaml"}

type options struct {
	weir     string
	aigw     string
	duration time.Duration
	warmup   time.Duration
	conc     []int
	out      string
	configs  []string
	servers  []string
	conns    int
	max      int
	timeout  time.Duration
}

// Row is one (server, config, concurrency) measurement.
type Row struct {
	Server       string         `json:"server"`
	Config       string         `json:"config"`
	Kind         string         `json:"kind"`
	Concurrency  int            `json:"concurrency"`
	Requests     int            `json:"requests"`
	Errors       int            `json:"errors"`
	ErrorKinds   map[string]int `json:"error_kinds,omitempty"`
	Seconds      float64        `json:"seconds"`
	ReqPerSec    float64        `json:"req_per_sec"`
	P50us        float64        `json:"p50_us"`
	P99us        float64        `json:"p99_us"`
	CPUusPerReq  float64        `json:"cpu_us_per_req"`
	ServerCPUPct float64        `json:"server_cpu_pct"`
	LoadCPUPct   float64        `json:"loadgen_cpu_pct"`
	MaxRSSMiB    float64        `json:"max_rss_mib"`
	AllocsPerReq float64        `json:"allocs_per_req"`
	Failed       string         `json:"failed,omitempty"`
	// Redis, for a config on the Redis limits store (weir only): script
	// calls (EVALSHA + EVAL) and every other command a client sent, per
	// request, from INFO commandstats; and redis-server's CPU per request.
	RedisScriptsPerReq *float64 `json:"redis_scripts_per_req,omitempty"`
	RedisOtherPerReq   *float64 `json:"redis_other_cmds_per_req,omitempty"`
	RedisCPUusPerReq   *float64 `json:"redis_cpu_us_per_req,omitempty"`
	// NoAllocs: the server exposes no allocation count (aigw).
	NoAllocs bool `json:"allocs_unavailable,omitempty"`
}

// Summary compares Weir with the floor for one config.
type Summary struct {
	Config       string  `json:"config"`
	Kind         string  `json:"kind"`
	Concurrency  int     `json:"concurrency"`
	NullCPUus    float64 `json:"null_cpu_us_per_req"`
	WeirCPUus    float64 `json:"weir_cpu_us_per_req"`
	OverheadUs   float64 `json:"weir_minus_null_cpu_us"`
	Ratio        float64 `json:"weir_over_null_cpu"`
	NullAllocs   float64 `json:"null_allocs_per_req"`
	WeirAllocs   float64 `json:"weir_allocs_per_req"`
	WeirP50Extra float64 `json:"weir_minus_null_p50_us"`
}

// Report is the -out JSON.
type Report struct {
	Time      time.Time                      `json:"time"`
	GoVersion string                         `json:"go_version"`
	Weir      string                         `json:"weir_binary"`
	Pinning   string                         `json:"pinning"`
	Duration  string                         `json:"duration"`
	Warmup    string                         `json:"warmup"`
	Conns     int                            `json:"grpc_connections"`
	Shapes    map[string]*bench.Shape        `json:"shapes"`
	Sizes     map[string][]bench.MessageSize `json:"message_bytes"`
	Profiles  map[string]*bench.Profile      `json:"profiles"`
	Rows      []Row                          `json:"rows"`
	Summary   []Summary                      `json:"summary"`
	Skipped   []string                       `json:"skipped,omitempty"`
	// Envoy AI Gateway: the paired configs, message sizes and comparison.
	AIGW        map[string]*bench.AIGWProfile  `json:"aigw,omitempty"`
	AIGWSizes   map[string][]bench.MessageSize `json:"aigw_message_bytes,omitempty"`
	AIGWSummary []AIGWSummary                  `json:"aigw_summary,omitempty"`
}

func run(args []string) (int, error) {
	fs := flag.NewFlagSet("weirbench", flag.ContinueOnError)
	var o options
	var conc, configs, servers string
	fs.StringVar(&o.weir, "weir", "", "weir `binary` run as 'PATH extproc --config ...'; empty builds ./extproc/cmd/weir")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured `time` per concurrency level")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up `time` before each level")
	fs.StringVar(&conc, "conc", "1,16,64", "comma-separated concurrency `levels` (closed loop)")
	fs.StringVar(&o.out, "out", "", "write the report as JSON to `file`")
	fs.StringVar(&configs, "configs", "", "comma-separated config `files`; empty means every default config in test/bench ("+strings.Join(defaultConfigs, ", ")+")")
	fs.StringVar(&o.aigw, "aigw", "", "Envoy AI Gateway extproc `binary` (built from its repository's cmd/extproc); empty skips the aigw server")
	fs.StringVar(&servers, "servers", "null,weir,aigw", "servers to measure: null, weir, aigw, null-aigw (the null floor on AIGW's message shape)")
	fs.IntVar(&o.conns, "conns", 1, "gRPC (HTTP/2) connections per server; workers share them round-robin")
	fs.IntVar(&o.max, "max-requests", 5_000_000, "upper bound on requests per level")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("-conc: bad level %q", s)
		}
		o.conc = append(o.conc, n)
	}
	o.servers = strings.Split(servers, ",")
	if o.conns < 1 {
		o.conns = 1
	}

	tmp, err := os.MkdirTemp("", "weirbench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)

	root, rootErr := moduleRoot()
	if configs == "" {
		if rootErr != nil {
			return 0, fmt.Errorf("-configs not given and %w", rootErr)
		}
		for _, c := range defaultConfigs {
			o.configs = append(o.configs, filepath.Join(root, "test/bench", c))
		}
	} else {
		o.configs = strings.Split(configs, ",")
	}
	if o.weir == "" {
		if rootErr != nil {
			return 0, fmt.Errorf("-weir not given and %w", rootErr)
		}
		o.weir = filepath.Join(tmp, "weir")
		fmt.Fprintf(os.Stderr, "building ./extproc/cmd/weir (use -weir PATH for a prebuilt binary)...\n")
		cmd := exec.Command("go", "build", "-o", o.weir, "./extproc/cmd/weir")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("build weir: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}

	rep := &Report{
		Time: time.Now().UTC(), GoVersion: runtime.Version(), Weir: o.weir,
		Duration: o.duration.String(), Warmup: o.warmup.String(), Conns: o.conns,
		Shapes: map[string]*bench.Shape{}, Sizes: map[string][]bench.MessageSize{}, Profiles: map[string]*bench.Profile{},
	}
	pin := pinSelf()
	rep.Pinning = pin.note
	fmt.Printf("weirbench: %s; %s warm-up + %s per level; %d gRPC connection(s) per server\n", pin.note, o.warmup, o.duration, o.conns)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var seq atomic.Uint64
	for _, cfgPath := range o.configs {
		p, err := bench.LoadProfile(cfgPath, "gpt-4o-mini")
		if err != nil {
			return 0, err
		}
		shape, err := bench.ShapeFromXDS(p.Config, p.Backend)
		if err != nil {
			return 0, err
		}
		var rs *redisServer
		if p.LimitsStore == "redis" && slices.Contains(o.servers, "weir") {
			rs, err = startRedis(tmp, pin)
			if err != nil {
				note := fmt.Sprintf("%s: skipped: %v", p.Name, err)
				fmt.Fprintln(os.Stderr, "weirbench:", note)
				rep.Skipped = append(rep.Skipped, note)
				continue
			}
		}
		rep.Shapes[p.Name], rep.Profiles[p.Name] = shape, p
		for _, srvName := range o.servers {
			if isAIGW(srvName) {
				rows, note, err := measureAIGW(ctx, o, pin, srvName, cfgPath, p, self, tmp, rep, &seq)
				if err != nil {
					rs.stop()
					return 0, err
				}
				if note != "" && !slices.Contains(rep.Skipped, note) {
					fmt.Fprintln(os.Stderr, "weirbench:", note)
					rep.Skipped = append(rep.Skipped, note)
				}
				rep.Rows = append(rep.Rows, rows...)
				if ctx.Err() != nil {
					rs.stop()
					return 1, ctx.Err()
				}
				continue
			}
			strict := srvName == "weir"
			d, err := bench.NewDriver(shape, p, strict)
			if err != nil {
				return 0, err
			}
			if _, ok := rep.Sizes[p.Name]; !ok {
				rep.Sizes[p.Name] = d.Sizes()
			}
			var argv, env []string
			var srvRedis *redisServer
			sock := filepath.Join(tmp, srvName+"-"+p.Name+".sock")
			admin, err := freePort()
			if err != nil {
				return 0, err
			}
			switch srvName {
			case "weir":
				argv = []string{o.weir, "extproc", "--config", cfgPath, "--listen", "unix://" + sock, "--admin", admin, "--log-level", "warn"}
				if rs != nil {
					env, srvRedis = []string{"WEIR_BENCH_REDIS=" + rs.addr}, rs
				}
			case "null":
				argv = []string{self, "null-server", "--listen", "unix://" + sock, "--admin", admin}
			default:
				return 0, fmt.Errorf("-servers: unknown %q", srvName)
			}
			rows, err := measure(ctx, o, pin, srvName, p, d, server{argv: argv, env: env, sock: sock, admin: admin, redis: srvRedis}, filepath.Join(tmp, srvName+"-"+p.Name+".stderr"), &seq)
			if err != nil {
				rs.stop()
				return 0, err
			}
			rep.Rows = append(rep.Rows, rows...)
			if ctx.Err() != nil {
				rs.stop()
				return 1, ctx.Err()
			}
		}
		rs.stop()
	}
	rep.Summary = summarize(rep.Rows, o.conc[len(o.conc)-1])
	rep.AIGWSummary = summarizeAIGW(rep.Rows, o.conc[len(o.conc)-1])
	printReport(os.Stdout, rep)
	printAIGW(os.Stdout, rep)
	if o.out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return 0, err
		}
		fmt.Printf("\nJSON report: %s\n", o.out)
	}
	for _, r := range rep.Rows {
		if r.Errors > 0 || r.Failed != "" {
			return 1, nil
		}
	}
	return 0, nil
}

// measure starts one server process and runs every concurrency level
// against it.
func measure(ctx context.Context, o options, pin pinning, name string, p *bench.Profile, d bench.Requester, srv server, stderrPath string, seq *atomic.Uint64) ([]Row, error) {
	argv, sock, admin := srv.argv, srv.sock, srv.admin
	if pin.server != nil {
		argv = append(append([]string(nil), pin.server...), argv...)
	}
	errf, err := os.Create(stderrPath)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = nil // the access log goes to /dev/null; writing it is part of Weir's cost
	cmd.Stderr = errf
	if srv.env != nil {
		cmd.Env = append(os.Environ(), srv.env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopProcess(cmd, exited, srv.stopSignal)
	pid := cmd.Process.Pid
	fmt.Fprintf(os.Stderr, "%s/%s: pid %d: %s\n", name, p.Name, pid, strings.Join(argv, " "))

	failed := func(msg string) []Row {
		var out []Row
		for _, c := range o.conc {
			out = append(out, Row{Server: name, Config: p.Name, Kind: p.Kind, Concurrency: c, Failed: msg})
		}
		return out
	}
	if err := waitReady(admin, cmp.Or(srv.readyPath, "/readyz"), sock, exited, 20*time.Second); err != nil {
		tail, _ := os.ReadFile(stderrPath)
		return failed(fmt.Sprintf("not ready: %v; stderr: %s", err, lastLines(tail, 5))), nil
	}
	clients := make([]extprocv3.ExternalProcessorClient, o.conns)
	for i := range clients {
		conn, err := grpc.NewClient("unix://"+sock,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(daemon.MaxMessageBytes)))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conn.Connect()
		clients[i] = extprocv3.NewExternalProcessorClient(conn)
	}
	// One validated request first: a config or build that only produces
	// errors is reported as failed, not measured.
	pctx, pcancel := context.WithTimeout(ctx, o.timeout)
	err = d.Do(pctx, clients[0], bench.RequestID(seq.Add(1)))
	pcancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s/%s: probe request failed, not measuring: %v\n", name, p.Name, err)
		return failed("probe request failed: " + err.Error()), nil
	}

	var rows []Row
	for _, c := range o.conc {
		if ctx.Err() != nil {
			break
		}
		rss := sampleRSS(pid)
		warm := bench.Load(ctx, d, clients, c, o.warmup, o.max, o.timeout, seq)
		cpu0, err0 := procCPU(pid)
		self0, _ := procCPU(os.Getpid())
		m0, merr0 := mallocs(admin, srv.noAllocs)
		rstat0, rerr0 := srv.redis.stats()
		r := bench.Load(ctx, d, clients, c, o.duration, o.max, o.timeout, seq)
		cpu1, err1 := procCPU(pid)
		self1, _ := procCPU(os.Getpid())
		m1, merr1 := mallocs(admin, srv.noAllocs)
		rstat1, rerr1 := srv.redis.stats()
		maxRSS := rss()
		row := Row{
			Server: name, Config: p.Name, Kind: p.Kind, Concurrency: c,
			Requests: r.Requests, Errors: r.Errors, Seconds: r.Elapsed.Seconds(),
			P50us: us(r.Percentile(0.50)), P99us: us(r.Percentile(0.99)),
			MaxRSSMiB: float64(maxRSS) / 1024, NoAllocs: srv.noAllocs,
		}
		// Warm-up failures are not measured but still counted.
		for k, v := range warm.ErrorKinds {
			r.ErrorKinds["warm-up: "+k] += v
			r.ErrorSample["warm-up: "+k] = warm.ErrorSample[k]
		}
		row.Errors += warm.Errors
		if row.Errors > 0 {
			row.ErrorKinds = r.ErrorKinds
			for k, v := range r.ErrorSample {
				fmt.Fprintf(os.Stderr, "%s/%s c=%d: %d x %s: %s\n", name, p.Name, c, r.ErrorKinds[k], k, v)
			}
		}
		if r.Requests > 0 {
			row.ReqPerSec = float64(r.Requests) / r.Elapsed.Seconds()
			if err0 == nil && err1 == nil {
				row.CPUusPerReq = float64(cpu1-cpu0) * 1e6 / clockTicks / float64(r.Requests)
				row.ServerCPUPct = float64(cpu1-cpu0) / clockTicks / r.Elapsed.Seconds() * 100
			}
			row.LoadCPUPct = float64(self1-self0) / clockTicks / r.Elapsed.Seconds() * 100
			if merr0 == nil && merr1 == nil && !srv.noAllocs {
				row.AllocsPerReq = (m1 - m0) / float64(r.Requests)
			}
			if srv.redis != nil && rerr0 == nil && rerr1 == nil {
				n := float64(r.Requests)
				scripts := float64(rstat1.scripts-rstat0.scripts) / n
				other := float64(rstat1.other-rstat0.other) / n
				rcpu := float64(rstat1.cpuTicks-rstat0.cpuTicks) * 1e6 / clockTicks / n
				row.RedisScriptsPerReq, row.RedisOtherPerReq, row.RedisCPUusPerReq = &scripts, &other, &rcpu
			}
		}
		for _, e := range []error{err0, err1, merr0, merr1, rerr0, rerr1} {
			if e != nil {
				fmt.Fprintf(os.Stderr, "%s/%s c=%d: %v\n", name, p.Name, c, e)
			}
		}
		fmt.Fprintf(os.Stderr, "%s/%s c=%d: %d requests, %d errors, %.0f req/s\n", name, p.Name, c, r.Requests, r.Errors, row.ReqPerSec)
		rows = append(rows, row)
	}
	select {
	case err := <-exited:
		tail, _ := os.ReadFile(stderrPath)
		return rows, fmt.Errorf("%s exited during the run (%v): %s", name, err, lastLines(tail, 5))
	default:
	}
	return rows, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// the kernel fixes it at 100 for userspace on every Linux architecture Go
// supports.
const clockTicks = 100

// procCPU returns utime+stime of all of pid's threads, in clock ticks.
func procCPU(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// procRSS returns VmRSS in KiB.
func procRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// sampleRSS samples VmRSS every 50ms until the returned func is called,
// which returns the maximum in KiB.
func sampleRSS(pid int) func() uint64 {
	var mu sync.Mutex
	var maxKiB uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		if v, err := procRSS(pid); err == nil {
			mu.Lock()
			maxKiB = max(maxKiB, v)
			mu.Unlock()
		}
	}
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return maxKiB
	}
}

// mallocs scrapes go_memstats_mallocs_total from the admin /metrics
// (skip: the server has none).
func mallocs(admin string, skip bool) (float64, error) {
	if skip {
		return 0, nil
	}
	return metric(admin, "go_memstats_mallocs_total")
}

func waitReady(admin, readyPath, sock string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		if resp, err := c.Get("http://" + admin + readyPath); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if conn, err := net.Dial("unix", sock); err == nil {
					conn.Close()
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s", timeout)
}

func stopProcess(cmd *exec.Cmd, exited <-chan error, sig syscall.Signal) {
	_ = cmd.Process.Signal(cmp.Or(sig, syscall.SIGTERM))
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/weir-ai/weir\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not run inside the github.com/weir-ai/weir module")
		}
		dir = parent
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// pinning is how servers and the load generator are placed on CPUs.
type pinning struct {
	server []string // argv prefix for servers, nil when unpinned
	note   string
}

// pinSelf pins the load generator (every thread) to CPU 1 and returns the
// prefix that pins servers to CPU 0.
func pinSelf() pinning {
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{note: "taskset not found (install util-linux): servers and load generator UNPINNED"}
	}
	if runtime.NumCPU() < 2 {
		return pinning{note: fmt.Sprintf("only %d CPU: servers and load generator UNPINNED, sharing it", runtime.NumCPU())}
	}
	out, err := exec.Command(ts, "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return pinning{note: fmt.Sprintf("taskset failed (%v: %s): UNPINNED", err, bytes.TrimSpace(out))}
	}
	runtime.GOMAXPROCS(1)
	return pinning{
		server: []string{ts, "-c", "0"},
		note:   "servers pinned to CPU 0 (GOMAXPROCS=1 follows), load generator pinned to CPU 1 (GOMAXPROCS=1)",
	}
}

// findRow is the measured row of server and config at conc, if any.
func findRow(rows []Row, server, cfg string, conc int) *Row {
	for i := range rows {
		r := &rows[i]
		if r.Server == server && r.Config == cfg && r.Concurrency == conc && r.Failed == "" && r.Requests > 0 {
			return r
		}
	}
	return nil
}

func summarize(rows []Row, conc int) []Summary {
	find := func(server, cfg string) *Row { return findRow(rows, server, cfg, conc) }
	var out []Summary
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Config] {
			continue
		}
		seen[r.Config] = true
		n, w := find("null", r.Config), find("weir", r.Config)
		if n == nil || w == nil {
			continue
		}
		s := Summary{
			Config: r.Config, Kind: r.Kind, Concurrency: conc,
			NullCPUus: n.CPUusPerReq, WeirCPUus: w.CPUusPerReq, OverheadUs: w.CPUusPerReq - n.CPUusPerReq,
			NullAllocs: n.AllocsPerReq, WeirAllocs: w.AllocsPerReq, WeirP50Extra: w.P50us - n.P50us,
		}
		if n.CPUusPerReq > 0 {
			s.Ratio = w.CPUusPerReq / n.CPUusPerReq
		}
		out = append(out, s)
	}
	return out
}

func printReport(w io.Writer, rep *Report) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tconfig\tkind\tconc\treq/s\tp50 µs\tp99 µs\tcpu µs/req\tmax rss MiB\tallocs/req\terrors\tsrv cpu%\tgen cpu%\t")
	for _, r := range rep.Rows {
		if r.Failed != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t-\t-\t-\t-\t-\t-\tFAILED\t-\t-\t\n", r.Server, r.Config, r.Kind, r.Concurrency)
			continue
		}
		allocs := fmt.Sprintf("%.0f", r.AllocsPerReq)
		if r.NoAllocs {
			allocs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%s\t%d\t%.0f\t%.0f\t\n",
			r.Server, r.Config, r.Kind, r.Concurrency, r.ReqPerSec, r.P50us, r.P99us, r.CPUusPerReq, r.MaxRSSMiB, allocs, r.Errors, r.ServerCPUPct, r.LoadCPUPct)
	}
	tw.Flush()
	for _, r := range rep.Rows {
		if r.Failed != "" && r.Concurrency == rep.Rows[0].Concurrency {
			fmt.Fprintf(w, "FAILED %s/%s: %s\n", r.Server, r.Config, r.Failed)
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "SKIPPED %s\n", s)
	}
	var redisRows []Row
	for _, r := range rep.Rows {
		if r.RedisScriptsPerReq != nil {
			redisRows = append(redisRows, r)
		}
	}
	if len(redisRows) > 0 {
		fmt.Fprintln(w, "\nRedis per request (INFO commandstats; the reserve before the request goes upstream and the settle after the response are one EVALSHA round trip each):")
		for _, r := range redisRows {
			fmt.Fprintf(w, "  %-12s c=%-3d scripts (evalsha+eval) %.3f/req; other client commands %.3f/req; redis-server cpu %.1f µs/req\n",
				r.Config, r.Concurrency, *r.RedisScriptsPerReq, *r.RedisOtherPerReq, *r.RedisCPUusPerReq)
		}
	}

	fmt.Fprintln(w, "\nWeir over the null floor (server CPU per request):")
	if len(rep.Summary) == 0 {
		fmt.Fprintln(w, "  (no config has both a weir and a null measurement)")
	}
	for _, s := range rep.Summary {
		fmt.Fprintf(w, "  %-12s %-12s c=%-3d weir %.1f µs - null %.1f µs = %+.1f µs/req (x%.2f); allocs/req weir %.0f vs null %.0f; p50 %+.0f µs\n",
			s.Config, s.Kind, s.Concurrency, s.WeirCPUus, s.NullCPUus, s.OverheadUs, s.Ratio, s.WeirAllocs, s.NullAllocs, s.WeirP50Extra)
	}

	fmt.Fprintln(w, "\nMessage shape per request (from xds.Build; the same for both servers):")
	for _, name := range slices.Sorted(maps.Keys(rep.Sizes)) {
		sz, sh := rep.Sizes[name], rep.Shapes[name]
		up := 0
		for _, m := range sz {
			if m.Filter == "upstream" {
				up++
			}
		}
		skip := "not wrapped, runs"
		if m := sh.UpstreamSkip; m != nil {
			skip = fmt.Sprintf("match_delegate skips when %s exact %q prefix %q", m.Header, m.Exact, m.Prefix)
			if up == 0 {
				skip += ": skipped"
			} else {
				skip += ": runs"
			}
		}
		fmt.Fprintf(w, "  %s (backend %s): router %d msg, upstream %d msg (%s):", name, sh.Backend, sh.Router.Messages(), up, skip)
		for _, m := range sz {
			fmt.Fprintf(w, " %s %s %dB;", m.Filter, m.Phase, m.Bytes)
		}
		fmt.Fprintln(w)
	}
	if names := slices.Sorted(maps.Keys(rep.Shapes)); len(names) > 0 {
		anyShape := rep.Shapes[names[0]]
		for _, f := range []*bench.Filter{&anyShape.Router, &anyShape.Upstream} {
			fmt.Fprintf(w, "  %s: metadata %v; request phases %v attrs %v; response phases %v attrs %v; forwarding %v receiving %v\n",
				f.Where, f.InitialMetadata, f.RequestPhases, f.RequestAttributes, f.ResponsePhases, f.ResponseAttributes, f.ForwardingNamespaces, f.ReceivingNamespaces)
		}
	}
}
