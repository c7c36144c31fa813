package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weir-ai/weir/extproc/daemon"
	"github.com/weir-ai/weir/test/bench"
)

// soakConfigs are the configs `weirbench soak` runs by default: keys,
// every kind of limit and spend records on, one per limits store.
var soakConfigs = []string{"soak-memory.yaml", "soak-redis.yaml"}

// Sample is one point of a soak's memory curve.
type Sample struct {
	Seconds     float64 `json:"seconds"`
	Requests    uint64  `json:"requests"`
	RSSMiB      float64 `json:"rss_mib"`
	HeapMiB     float64 `json:"heap_live_mib"`
	RedisMiB    float64 `json:"redis_used_mib,omitempty"`
	RedisKeys   int64   `json:"redis_keys,omitempty"`
	RedisStream int64   `json:"redis_stream_len,omitempty"`
}

// SoakRun is one config's soak: its curve and the slopes fitted to the
// part after the settle time, in bytes (or keys) kept per request.
type SoakRun struct {
	Config   string   `json:"config"`
	Store    string   `json:"store"`
	Errors   int      `json:"errors"`
	Samples  []Sample `json:"samples"`
	RSSPer   float64  `json:"rss_bytes_per_req"`
	HeapPer  float64  `json:"heap_bytes_per_req"`
	RedisPer float64  `json:"redis_bytes_per_req,omitempty"`
	KeysPer  float64  `json:"redis_keys_per_req,omitempty"`
	Flat     bool     `json:"flat"`
	Verdict  string   `json:"verdict"`
}

// soak runs each config under constant load for a long time, samples the
// extproc's memory (and Redis's) every interval, and judges the curve:
// state that is kept per request shows as a slope in bytes per request.
func soak(args []string) (int, error) {
	fs := flag.NewFlagSet("weirbench soak", flag.ContinueOnError)
	weir := fs.String("weir", "", "weir `binary`; empty builds ./extproc/cmd/weir")
	configs := fs.String("configs", "", "comma-separated config `files`; empty means "+strings.Join(soakConfigs, ", ")+" in test/bench")
	dur := fs.Duration("duration", 4*time.Minute, "load `time` per config")
	every := fs.Duration("every", 5*time.Second, "sampling `interval`")
	settle := fs.Duration("settle", 150*time.Second, "`time` before the slope is fitted: sliding windows fill for 60s, the Redis spend append guard for 25s, and the Go heap grows to its steady size")
	conc := fs.Int("conc", 16, "concurrent requests")
	rate := fs.Float64("rate", 1000, "requests per `second`, paced, so that sliding windows hold the same number of entries once full; 0 runs closed loop")
	limit := fs.Float64("max-bytes-per-req", 32, "largest slope, in `bytes` kept per request, still called flat (a 2-core machine's noise over 4 minutes is about 10-30)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	out := fs.String("out", "", "write the curves as JSON to `file`")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if *settle >= *dur {
		return 0, fmt.Errorf("-settle %s must be shorter than -duration %s", *settle, *dur)
	}
	tmp, err := os.MkdirTemp("", "weirbench-soak-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	root, rootErr := moduleRoot()
	var paths []string
	if *configs == "" {
		if rootErr != nil {
			return 0, fmt.Errorf("-configs not given and %w", rootErr)
		}
		for _, c := range soakConfigs {
			paths = append(paths, filepath.Join(root, "test/bench", c))
		}
	} else {
		paths = strings.Split(*configs, ",")
	}
	if *weir == "" {
		if rootErr != nil {
			return 0, fmt.Errorf("-weir not given and %w", rootErr)
		}
		*weir = filepath.Join(tmp, "weir")
		fmt.Fprintf(os.Stderr, "building ./extproc/cmd/weir (use -weir PATH for a prebuilt binary)...\n")
		cmd := exec.Command("go", "build", "-o", *weir, "./extproc/cmd/weir")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("build weir: %w", err)
		}
	}
	pin := pinSelf()
	fmt.Printf("weirbench soak: %s; %s per config, c=%d at %.0f req/s (0: closed loop), a sample every %s, slope fitted after %s\n", pin.note, *dur, *conc, *rate, *every, *settle)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var runs []*SoakRun
	code := 0
	for _, path := range paths {
		r, err := soakOne(ctx, path, *weir, tmp, pin, *dur, *every, *settle, *conc, *rate, *timeout)
		if err != nil {
			return 0, err
		}
		judge(r, *settle, *limit)
		printSoak(os.Stdout, r)
		runs = append(runs, r)
		if !r.Flat || r.Errors > 0 {
			code = 1
		}
		if ctx.Err() != nil {
			return 1, ctx.Err()
		}
	}
	if *out != "" {
		b, _ := json.MarshalIndent(runs, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return 0, err
		}
		fmt.Printf("\nJSON report: %s\n", *out)
	}
	return code, nil
}

func soakOne(ctx context.Context, path, weir, tmp string, pin pinning, dur, every, settle time.Duration, conc int, rate float64, timeout time.Duration) (*SoakRun, error) {
	p, err := bench.LoadProfile(path, "gpt-4o-mini")
	if err != nil {
		return nil, err
	}
	shape, err := bench.ShapeFromXDS(p.Config, p.Backend)
	if err != nil {
		return nil, err
	}
	driver, err := bench.NewDriver(shape, p, true)
	if err != nil {
		return nil, err
	}
	var d bench.Requester = driver
	run := &SoakRun{Config: p.Name, Store: p.LimitsStore}
	var rs *redisServer
	var env []string
	if p.LimitsStore == "redis" {
		if rs, err = startRedis(tmp, pin); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		defer rs.stop()
		env = []string{"WEIR_BENCH_REDIS=" + rs.addr}
	}
	sock := filepath.Join(tmp, "soak-"+p.Name+".sock")
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	argv := append(append([]string(nil), pin.server...), weir, "extproc", "--config", path, "--listen", "unix://"+sock, "--admin", admin, "--log-level", "warn")
	errPath := filepath.Join(tmp, "soak-"+p.Name+".stderr")
	errf, err := os.Create(errPath)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = errf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start weir: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopProcess(cmd, exited, syscall.SIGTERM)
	pid := cmd.Process.Pid
	fmt.Fprintf(os.Stderr, "soak/%s: pid %d: %s\n", p.Name, pid, strings.Join(argv, " "))
	if err := waitReady(admin, "/readyz", sock, exited, 20*time.Second); err != nil {
		tail, _ := os.ReadFile(errPath)
		return nil, fmt.Errorf("%s: not ready: %w; stderr: %s", p.Name, err, lastLines(tail, 5))
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(daemon.MaxMessageBytes)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	clients := []extprocv3.ExternalProcessorClient{extprocv3.NewExternalProcessorClient(conn)}
	var seq atomic.Uint64
	pctx, pcancel := context.WithTimeout(ctx, timeout)
	err = d.Do(pctx, clients[0], bench.RequestID(seq.Add(1)))
	pcancel()
	if err != nil {
		return nil, fmt.Errorf("%s: probe request failed: %w", p.Name, err)
	}

	if rate > 0 {
		pc := &paced{Requester: d, every: time.Duration(float64(time.Second) / rate), next: time.Now()}
		d = pc
	}
	done := make(chan *bench.LoadResult, 1)
	t0 := time.Now()
	go func() { done <- bench.Load(ctx, d, clients, conc, dur, math.MaxInt, timeout, &seq) }()
	sample := func() {
		s := Sample{Seconds: time.Since(t0).Seconds(), Requests: seq.Load()}
		if kib, err := procRSS(pid); err == nil {
			s.RSSMiB = float64(kib) / 1024
		}
		// The heap live after the last GC: the goal the GC set from it,
		// divided back by GOGC. heap_inuse would add the sawtooth of
		// garbage between collections.
		next, err1 := metric(admin, "go_memstats_next_gc_bytes")
		gogc, err2 := metric(admin, "go_gc_gogc_percent")
		if err1 == nil && err2 == nil && gogc > 0 {
			s.HeapMiB = next / (1 + gogc/100) / (1 << 20)
		}
		if rs != nil {
			s.RedisMiB, s.RedisKeys, s.RedisStream = rs.memory()
		}
		run.Samples = append(run.Samples, s)
		fmt.Fprintf(os.Stderr, "soak/%s: %4.0fs %9d requests  rss %6.1f MiB  live heap %6.1f MiB  redis %6.1f MiB %7d keys\n",
			p.Name, s.Seconds, s.Requests, s.RSSMiB, s.HeapMiB, s.RedisMiB, s.RedisKeys)
	}
	sample()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			sample()
			run.Errors = res.Errors
			for k, v := range res.ErrorSample {
				fmt.Fprintf(os.Stderr, "soak/%s: %d x %s: %s\n", p.Name, res.ErrorKinds[k], k, v)
			}
			return run, nil
		case err := <-exited:
			tail, _ := os.ReadFile(errPath)
			return nil, fmt.Errorf("%s: weir exited during the soak (%v): %s", p.Name, err, lastLines(tail, 5))
		case <-tick.C:
			sample()
		}
	}
}

// paced spaces requests every interval, whatever the concurrency, so the
// rate is the same all along: a closed loop on a shared machine speeds up
// and slows down, and the sliding windows' size with it.
type paced struct {
	bench.Requester
	every time.Duration
	mu    sync.Mutex
	next  time.Time
}

func (p *paced) Do(ctx context.Context, c extprocv3.ExternalProcessorClient, id string) error {
	p.mu.Lock()
	// A server that stalled (the machine is shared) does not get the
	// missed requests in a burst: a burst would fill the windows beyond
	// the steady rate's size.
	if now := time.Now(); p.next.Before(now.Add(-p.every)) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.every)
	p.mu.Unlock()
	if wait := time.Until(at); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return p.Requester.Do(ctx, c, id)
}

// judge fits a line to each curve after settle, against requests served:
// the slope is what each request leaves behind. Before the reservation
// records were deleted at settle it was 150-400 bytes per request on the
// in-memory store and 900 (two keys) on Redis.
func judge(r *SoakRun, settle time.Duration, limit float64) {
	var xs []float64
	var rss, heap, redisMem, keys []float64
	for _, s := range r.Samples {
		if s.Seconds < settle.Seconds() {
			continue
		}
		xs = append(xs, float64(s.Requests))
		rss = append(rss, s.RSSMiB*(1<<20))
		heap = append(heap, s.HeapMiB*(1<<20))
		redisMem = append(redisMem, s.RedisMiB*(1<<20))
		keys = append(keys, float64(s.RedisKeys))
	}
	if len(xs) < 3 {
		r.Verdict = fmt.Sprintf("too few samples after %s to judge (%d); run longer or sample more often", settle, len(xs))
		return
	}
	r.RSSPer, r.HeapPer = slope(xs, rss), slope(xs, heap)
	worst := max(r.RSSPer, r.HeapPer)
	if r.Store == "redis" {
		r.RedisPer, r.KeysPer = slope(xs, redisMem), slope(xs, keys)
		worst = max(worst, r.RedisPer)
	}
	r.Flat = worst <= limit && r.KeysPer < 0.001
	r.Verdict = fmt.Sprintf("flat: the steepest slope is %.1f bytes per request (limit %.0f)", worst, limit)
	if !r.Flat {
		r.Verdict = fmt.Sprintf("GROWING: %.1f bytes per request, %.4f Redis keys per request (limit %.0f bytes, 0 keys)", worst, r.KeysPer, limit)
	}
}

// slope is the Theil–Sen slope of ys over xs, the median of the slopes
// between every pair of samples: an RSS spike at one sample (a GC cycle,
// the scavenger) moves it little, where least squares would follow it.
func slope(xs, ys []float64) float64 {
	var ss []float64
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if xs[j] != xs[i] {
				ss = append(ss, (ys[j]-ys[i])/(xs[j]-xs[i]))
			}
		}
	}
	if len(ss) == 0 {
		return 0
	}
	slices.Sort(ss)
	if n := len(ss); n%2 == 0 {
		return (ss[n/2-1] + ss[n/2]) / 2
	}
	return ss[len(ss)/2]
}

func printSoak(w io.Writer, r *SoakRun) {
	fmt.Fprintf(w, "\n%s (store %s), %d errors\n", r.Config, r.Store, r.Errors)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "s\trequests\tRSS MiB\tlive heap MiB\t"
	if r.Store == "redis" {
		head += "Redis MiB\tRedis keys\tstream\t"
	}
	fmt.Fprintln(tw, head)
	for _, s := range r.Samples {
		line := fmt.Sprintf("%.0f\t%d\t%.1f\t%.1f\t", s.Seconds, s.Requests, s.RSSMiB, s.HeapMiB)
		if r.Store == "redis" {
			line += fmt.Sprintf("%.1f\t%d\t%d\t", s.RedisMiB, s.RedisKeys, s.RedisStream)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintf(w, "slope after settling, bytes per request: RSS %.1f, live heap %.1f", r.RSSPer, r.HeapPer)
	if r.Store == "redis" {
		fmt.Fprintf(w, ", Redis %.1f (%.4f keys per request)", r.RedisPer, r.KeysPer)
	}
	fmt.Fprintf(w, "\nverdict: %s\n", r.Verdict)
}

// metric scrapes one unlabelled value from the admin /metrics.
func metric(admin, name string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s/metrics: no %s", admin, name)
}

// memory is redis-server's used_memory (MiB), its key count and the spend
// stream's length.
func (r *redisServer) memory() (float64, int64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var used float64
	if info, err := r.client.Info(ctx, "memory").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
				b, _ := strconv.ParseFloat(v, 64)
				used = b / (1 << 20)
			}
		}
	}
	keys, _ := r.client.DBSize(ctx).Result()
	stream, _ := r.client.XLen(ctx, "{weir}:spend").Result()
	return used, keys, stream
}
