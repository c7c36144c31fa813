package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/test/testpki"
)

const minimalConfig = "version: weir.dev/v1alpha1\n"

// startDaemon runs Run with o until the test ends and returns the gRPC
// address it bound.
func startDaemon(t *testing.T, o Options) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.ConfigYAML = []byte(minimalConfig)
	o.Lookup = func(string) (string, bool) { return "", false }
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Ready = func(g, _, _ net.Addr) { ready <- g.String() }
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
		return ""
	}
}

// callProcess opens a router-level stream and sends one request body; any
// reply proves the call reached the extproc.
func callProcess(ctx context.Context, target string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, config.FilterLevelHeader, config.FilterLevelRouter)
	st, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
		}}}},
	}); err != nil {
		return err
	}
	resp, err := st.Recv()
	if err != nil {
		return err
	}
	if resp.GetResponse() == nil {
		return errors.New("empty processing response")
	}
	return nil
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := testpki.NewCA(t, "extproc CA"), testpki.NewCA(t, "envoy CA"), testpki.NewCA(t, "other CA")
	dir := t.TempDir()
	srv := serverCA.Issue(t, "extproc", "extproc.weir.test", "127.0.0.1")
	addr := startDaemon(t, Options{
		Listen:          "127.0.0.1:0",
		TLSCertFile:     testpki.WriteFile(t, dir, "server.pem", srv.CertPEM),
		TLSKeyFile:      testpki.WriteFile(t, dir, "server.key", srv.KeyPEM),
		TLSClientCAFile: testpki.WriteFile(t, dir, "client-ca.pem", clientCA.PEM),
	})
	good, foreign := clientCA.Issue(t, "envoy", "envoy.weir.test"), otherCA.Issue(t, "envoy", "envoy.weir.test")
	tests := []struct {
		name    string
		creds   credentials.TransportCredentials
		wantErr bool
	}{
		{"client certificate from the CA", credentials.NewTLS(&tls.Config{RootCAs: serverCA.Pool(), ServerName: "extproc.weir.test", Certificates: []tls.Certificate{good.TLS}}), false},
		{"no client certificate", credentials.NewTLS(&tls.Config{RootCAs: serverCA.Pool(), ServerName: "extproc.weir.test"}), true},
		{"client certificate from another CA", credentials.NewTLS(&tls.Config{RootCAs: serverCA.Pool(), ServerName: "extproc.weir.test",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign.TLS, nil }}), true},
		{"plaintext client", insecure.NewCredentials(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := callProcess(t.Context(), "passthrough:///"+addr, tt.creds)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestListenPolicy(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	dir := t.TempDir()
	leaf := ca.Issue(t, "extproc", "127.0.0.1")
	cert, key, caFile := testpki.WriteFile(t, dir, "c.pem", leaf.CertPEM), testpki.WriteFile(t, dir, "k.pem", leaf.KeyPEM), testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	tests := []struct {
		name     string
		o        Options
		wantErr  string // empty: listening must succeed
		wantWarn bool
	}{
		{"plaintext TCP refused", Options{Listen: "127.0.0.1:0"}, "needs mutual TLS", false},
		{"insecure TCP on loopback", Options{Listen: "127.0.0.1:0", InsecureTCP: true}, "", true},
		{"insecure TCP on all interfaces", Options{Listen: "0.0.0.0:0", InsecureTCP: true}, "allowed only on a loopback address", false},
		{"insecure TCP on a name", Options{Listen: "extproc.example:0", InsecureTCP: true}, "allowed only on a loopback address", false},
		{"mutual TLS on all interfaces", Options{Listen: "0.0.0.0:0", TLSCertFile: cert, TLSKeyFile: key, TLSClientCAFile: caFile}, "", false},
		{"TLS without client CA", Options{Listen: "0.0.0.0:0", TLSCertFile: cert, TLSKeyFile: key}, "needs all of", false},
		{"client CA without certificates", Options{Listen: "0.0.0.0:0", TLSCertFile: cert, TLSKeyFile: key, TLSClientCAFile: cert + ".missing"}, "no such file", false},
		{"TLS on a unix socket", Options{Listen: "unix://" + filepath.Join(dir, "x.sock"), TLSCertFile: cert}, "a unix socket is guarded by its mode", false},
		{"relative unix path", Options{Listen: "unix://x.sock"}, "must be absolute", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			tt.o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			l, _, err := listenGRPC(tt.o)
			if l != nil {
				l.Close()
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("listen: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if got := strings.Contains(logs.String(), "INSECURE"); got != tt.wantWarn {
				t.Errorf("insecure warning logged = %v, want %v (log %q)", got, tt.wantWarn, logs.String())
			}
		})
	}
}

func TestUnixSocket(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, path string)
		mode     fs.FileMode
		wantMode fs.FileMode
		wantErr  string
	}{
		{"default mode, parent created 0700", nil, 0, 0o600, ""},
		{"requested mode", nil, 0o660, 0o660, ""},
		{"stale socket is replaced", func(t *testing.T, path string) {
			mkdir(t, filepath.Dir(path), 0o700)
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
		}, 0, 0o600, ""},
		{"live socket is not taken over", func(t *testing.T, path string) {
			mkdir(t, filepath.Dir(path), 0o700)
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, 0, 0, "another process is serving on it"},
		{"a regular file is not removed", func(t *testing.T, path string) {
			mkdir(t, filepath.Dir(path), 0o700)
			if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, 0, 0, "is not a socket"},
		{"group-writable directory", func(t *testing.T, path string) {
			mkdir(t, filepath.Dir(path), 0o770)
		}, 0, 0, "writable by group or others"},
		{"sticky world-writable directory, as /tmp", func(t *testing.T, path string) {
			mkdir(t, filepath.Dir(path), 0o777|fs.ModeSticky)
		}, 0, 0o600, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(base, string(rune('a'+i)), "extproc.sock")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			l, _, err := listenGRPC(Options{Listen: "unix://" + path, SocketMode: tt.mode})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != tt.wantMode {
				t.Errorf("socket mode = %v, want socket %04o", st.Mode(), tt.wantMode)
			}
			if tt.setup == nil {
				dst, err := os.Stat(filepath.Dir(path))
				if err != nil {
					t.Fatal(err)
				}
				if dst.Mode().Perm() != 0o700 {
					t.Errorf("created directory mode = %04o, want 0700", dst.Mode().Perm())
				}
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial the socket: %v", err)
			}
			c.Close()
		})
	}
}

// TestRunOnUnixSocket serves Process over the default kind of listener.
func TestRunOnUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "extproc.sock")
	addr := startDaemon(t, Options{Listen: "unix://" + path})
	if addr != path {
		t.Fatalf("bound %q, want %q", addr, path)
	}
	if err := callProcess(t.Context(), "unix://"+path, insecure.NewCredentials()); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
