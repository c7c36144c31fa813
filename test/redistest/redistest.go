// Package redistest starts a throwaway redis-server for a test: Debian's
// binary, on a free loopback port, without persistence, killed at cleanup.
//
// When redis-server is not installed the test is skipped, unless
// WEIR_REQUIRE_REDIS is set (CI sets it), where it fails instead.
package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
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
	opts Options
	cmd  *exec.Cmd
	once sync.Once
	done chan struct{}
}

// Options start a server that wants more than a plain connection.
type Options struct {
	// Args are extra redis-server arguments, such as "--requirepass",
	// "pw" or "--aclfile", path (ACL rules do not parse as arguments).
	Args []string
	// TLS, if set, makes the port a TLS port (the server's certificate,
	// key and CA must be in Args) and is how [Server.Client] dials it.
	TLS *tls.Config
	// Username and Password are what [Server.Client] authenticates with.
	Username, Password string
}

// readyTimeout bounds the wait for "Ready to accept connections": a
// deadline for a hung start, not a delay that synchronises anything.
const readyTimeout = 15 * time.Second

// Start runs redis-server and returns once it accepts connections and
// answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is [Start] with TLS, ACL users or other arguments.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := lookPath(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return start(t, bin, port, o)
}

// Reserve picks a free address without starting a server on it, for a
// test of Redis being down at start-up; [StartAt] brings it up later.
func Reserve(t testing.TB) string {
	t.Helper()
	lookPath(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// StartAt starts a server on addr, an address from [Reserve].
func StartAt(t testing.TB, addr string) *Server {
	t.Helper()
	bin := lookPath(t)
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, bin, port, Options{})
}

func lookPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("WEIR_REQUIRE_REDIS") != "" {
			t.Fatalf("redistest: redis-server not found and WEIR_REQUIRE_REDIS is set: %v", err)
		}
		t.Skip("redistest: redis-server not installed (apt-get install redis-server); set WEIR_REQUIRE_REDIS=1 to fail instead")
	}
	return bin
}

// Restart starts a new, empty server on the same address after [Server.Stop]:
// clients reconnect to it as to a Redis that came back from an outage.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	s.Stop()
	return start(t, s.cmd.Path, s.port, s.opts)
}

func start(t testing.TB, bin string, port int, o Options) *Server {
	t.Helper()
	ports := []string{"--port", strconv.Itoa(port)}
	if o.TLS != nil {
		ports = []string{"--port", "0", "--tls-port", strconv.Itoa(port)}
	}
	args := append(ports, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "notice")
	cmd := exec.Command(bin, append(args, o.Args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start: %v", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), port: port, opts: o, cmd: cmd, done: make(chan struct{})}
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
	return redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		TLSConfig: s.opts.TLS, Username: s.opts.Username, Password: s.opts.Password})
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
