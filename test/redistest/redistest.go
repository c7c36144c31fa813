// Package redistest starts a throwaway redis-server for a test: Debian's
// binary, on a free loopback port, without persistence, killed at cleanup.
//
// When redis-server is not installed the test is skipped, unless
// WEIR_REQUIRE_REDIS is set (CI sets it), where it fails instead.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	port int
	cmd  *exec.Cmd
	once sync.Once
	done chan struct{}
}

// readyTimeout bounds the wait for "Ready to accept connections": a
// deadline for a hung start, not a delay that synchronises anything.
const readyTimeout = 15 * time.Second

// Start runs redis-server and returns once it accepts connections and
// answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("WEIR_REQUIRE_REDIS") != "" {
			t.Fatalf("redistest: redis-server not found and WEIR_REQUIRE_REDIS is set: %v", err)
		}
		t.Skip("redistest: redis-server not installed (apt-get install redis-server); set WEIR_REQUIRE_REDIS=1 to fail instead")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return start(t, bin, port)
}

// Restart starts a new, empty server on the same address after [Server.Stop]:
// clients reconnect to it as to a Redis that came back from an outage.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	s.Stop()
	return start(t, s.cmd.Path, s.port)
}

func start(t testing.TB, bin string, port int) *Server {
	t.Helper()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start: %v", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), port: port, cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					close(ready)
					signalled = true
				}
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.Stop)
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("redistest: redis-server exited:\n%s", log.String())
	case <-time.After(readyTimeout):
		t.Fatalf("redistest: redis-server not ready after %s", readyTimeout)
	}
	c := s.Client()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: PING: %v", err)
	}
	return s
}

// Client returns a new client for the server. The caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits for
// it to exit. It is safe to call more than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
