package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// server is how one ext_proc server process is started and reached.
type server struct {
	argv, env   []string
	sock, admin string
	// redis is the limits store the server uses, to count its commands.
	redis *redisServer
	// readyPath is the admin readiness path (default /readyz); noAllocs:
	// the admin /metrics has no go_memstats_mallocs_total; stopSignal
	// stops the server (default SIGTERM).
	readyPath  string
	noAllocs   bool
	stopSignal syscall.Signal
}

// redisServer is a throwaway redis-server for a config on the Redis limits
// store, started like test/redistest starts one: loopback, a free port, no
// persistence. It is pinned with the load generator, so its CPU is not
// taken from the measured server.
type redisServer struct {
	addr     string
	cmd      *exec.Cmd
	exited   chan error
	client   *redis.Client
	scripted map[string]bool // commands the limit scripts call, not round trips
}

// redisStats are cumulative counters of a redis-server.
type redisStats struct {
	scripts  int64  // EVALSHA + EVAL calls: one client round trip each
	other    int64  // other client commands, INFO and script-internal calls excluded
	cpuTicks uint64 // redis-server utime+stime
}

var scriptCall = regexp.MustCompile(`redis\.p?call\(\s*['"]([A-Za-z]+)['"]`)

func startRedis(tmp string, pin pinning) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found (apt-get install redis-server)")
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	dir, err := os.MkdirTemp(tmp, "redis-")
	if err != nil {
		return nil, err
	}
	argv := []string{bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"}
	if pin.server != nil {
		// The load generator's CPU: Redis plays a remote service.
		argv = append([]string{pin.server[0], "-c", "1"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisServer{addr: addr, cmd: cmd, exited: make(chan error, 1), scripted: map[string]bool{}}
	go func() { r.exited <- cmd.Wait() }()
	r.client = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		select {
		case <-r.exited:
			b, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("redis-server exited: %s", lastLines(b, 5))
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("redis-server on %s: no PING answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Commands the limit scripts call count in commandstats too; they
	// are not round trips.
	if root, err := moduleRoot(); err == nil {
		files, _ := filepath.Glob(filepath.Join(root, "extproc/limits/redisstore/*.lua"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, m := range scriptCall.FindAllStringSubmatch(string(b), -1) {
				r.scripted[strings.ToLower(m[1])] = true
			}
		}
	}
	fmt.Fprintf(os.Stderr, "redis-server: pid %d on %s\n", cmd.Process.Pid, addr)
	return r, nil
}

// stats reads INFO commandstats and redis-server's CPU time. A nil server
// has no stats.
func (r *redisServer) stats() (redisStats, error) {
	var s redisStats
	if r == nil {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := r.client.Info(ctx, "commandstats").Result()
	if err != nil {
		return s, fmt.Errorf("redis INFO: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		// cmdstat_evalsha:calls=123,usec=...
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(sc.Text(), "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return s, fmt.Errorf("redis INFO: %q", sc.Text())
		}
		switch {
		case name == "evalsha" || name == "eval":
			s.scripts += n
		case name == "info" || r.scripted[name]:
		default:
			s.other += n
		}
	}
	s.cpuTicks, err = procCPU(r.cmd.Process.Pid)
	return s, err
}

func (r *redisServer) stop() {
	if r == nil {
		return
	}
	_ = r.client.Close()
	_ = r.cmd.Process.Kill()
	<-r.exited
}
