package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/certpool"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// DefaultListen is the gRPC listen address when none is given
// ([config.DefaultExtProcAddress]).
const DefaultListen = config.DefaultExtProcAddress

// DefaultSocketMode is the unix socket's mode when [Options.SocketMode]
// is zero: only the extproc's own user may connect.
const DefaultSocketMode fs.FileMode = 0o600

// ErrInsecureListen is returned for a gRPC listener that would serve
// provider credentials to anyone who can reach it.
var ErrInsecureListen = errors.New("insecure extproc listener")

// listenGRPC opens the gRPC listener of o and returns the server option
// that secures it: a unix socket needs none (the socket's mode guards it),
// a TCP address needs mutual TLS unless InsecureTCP allows plaintext on
// loopback.
func listenGRPC(o Options) (net.Listener, []grpc.ServerOption, error) {
	if path, ok := strings.CutPrefix(o.Listen, "unix://"); ok {
		if o.TLSCertFile != "" || o.TLSKeyFile != "" || o.TLSClientCAFile != "" {
			return nil, nil, fmt.Errorf("%w: TLS files are for a TCP listener; a unix socket is guarded by its mode", ErrInsecureListen)
		}
		mode := o.SocketMode
		if mode == 0 {
			mode = DefaultSocketMode
		}
		l, err := listenUnix(path, mode)
		return l, nil, err
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %q: %w (want host:port or unix:///path)", o.Listen, err)
	}
	var opts []grpc.ServerOption
	switch {
	case o.TLSCertFile != "" || o.TLSKeyFile != "" || o.TLSClientCAFile != "":
		cfg, err := serverTLS(o.TLSCertFile, o.TLSKeyFile, o.TLSClientCAFile)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	case o.InsecureTCP:
		if !isLoopbackHost(host) {
			return nil, nil, fmt.Errorf("%w: --insecure-tcp is allowed only on a loopback address, not %q; use mutual TLS (--tls-cert, --tls-key, --tls-client-ca) or a unix socket", ErrInsecureListen, o.Listen)
		}
		o.logger().Warn("!!! INSECURE: the extproc serves plaintext gRPC WITHOUT AUTHENTICATION on TCP; any local process can connect and receive provider credentials. Use a unix socket (the default) or mutual TLS.", "listen", o.Listen)
	default:
		return nil, nil, fmt.Errorf("%w: a TCP listener (%q) needs mutual TLS (--tls-cert, --tls-key, --tls-client-ca), because the extproc hands out provider credentials; use a unix:// socket, or --insecure-tcp on loopback for development", ErrInsecureListen, o.Listen)
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", o.Listen, err)
	}
	return l, opts, nil
}

// serverTLS presents cert/key and requires a client certificate that
// chains to the CAs in clientCAFile.
func serverTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCAFile == "" {
		return nil, errors.New("mutual TLS needs all of --tls-cert, --tls-key and --tls-client-ca")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	pool, err := certpool.Load(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("tls client CA: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// listenUnix listens on a unix socket at path with the given mode. It
// creates the parent directory (0700) when missing and refuses one that
// others may write to without the sticky bit, since they could swap the
// socket. A socket left by
// a previous run is removed; one that still answers, or a file that is not
// a socket, is an error.
func listenUnix(path string, mode fs.FileMode) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("listen unix://%s: the socket path must be absolute", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("listen unix://%s: %w", path, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("listen unix://%s: %w", path, err)
	}
	// A sticky directory such as /tmp is fine: others cannot remove or
	// rename the socket there.
	if st.Mode().Perm()&0o022 != 0 && st.Mode()&fs.ModeSticky == 0 {
		return nil, fmt.Errorf("listen unix://%s: directory %s is writable by group or others (mode %04o) without the sticky bit, so they could replace the socket; use a directory only the extproc's user can write", path, dir, st.Mode().Perm())
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen unix://%s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix://%s: another process is serving on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen unix://%s: remove stale socket: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen unix://%s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen unix://%s: chmod %04o: %w", path, mode, err)
	}
	return l, nil
}

// logger returns o.Logger or the default.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}
