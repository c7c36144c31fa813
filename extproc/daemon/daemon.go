// Package daemon runs the extproc: the gRPC ext_proc server, the admin HTTP
// server and the config reloader, with graceful shutdown. `weir extproc` and
// `weir dev` both use it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/extproc/admin"
	"github.com/weir-ai/weir/extproc/keystore"
	"github.com/weir-ai/weir/extproc/reload"
	"github.com/weir-ai/weir/extproc/spend/book"
	"github.com/weir-ai/weir/extproc/xdsclient"
)

// redisLog sends go-redis's internal messages to slog at debug level.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	if r.l.Enabled(ctx, slog.LevelDebug) {
		r.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
	}
}

// Options configure [Run].
type Options struct {
	// ConfigPath is the YAML file; empty with ConfigYAML set uses that
	// content and disables reloading.
	ConfigPath string
	ConfigYAML []byte
	// XDSServer (host:port), instead of ConfigPath and ConfigYAML, takes
	// the config from the controller's xDS server (extproc/xdsclient):
	// the daemon serves at once and is not ready until the first complete
	// config arrived; a config that fails is NACKed and the last good
	// one keeps serving.
	XDSServer string
	// XDSNodeID names this replica to the controller; empty means the
	// host name (the pod name in Kubernetes).
	XDSNodeID string
	// XDSCAFile holds the CAs the controller's certificate must chain to
	// (empty: the system roots); XDSCertFile and XDSKeyFile are this
	// replica's client certificate, for a controller that requires one.
	XDSCAFile   string
	XDSCertFile string
	XDSKeyFile  string
	// XDSInsecure connects in plaintext, for loopback or a network that
	// is otherwise protected: the stream carries provider credentials.
	XDSInsecure bool
	// Lookup resolves ${VAR}; nil means os.LookupEnv.
	Lookup config.LookupFunc
	// Listen is unix:///path or host:port for gRPC; empty means
	// [DefaultListen]. The extproc hands provider credentials to whoever
	// holds a stream, so a TCP address needs mutual TLS (TLSCertFile,
	// TLSKeyFile, TLSClientCAFile) unless InsecureTCP allows plaintext on
	// a loopback address.
	Listen string
	// SocketMode is the unix socket's mode; zero means
	// [DefaultSocketMode] (0600). The parent directory is created 0700
	// when missing.
	SocketMode os.FileMode
	// TLSCertFile and TLSKeyFile are the server certificate and key (PEM)
	// of a TCP listener; TLSClientCAFile holds the CAs that client
	// certificates must chain to. Clients without one are refused; TLS
	// 1.2 is the minimum.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	// InsecureTCP serves plaintext gRPC on a TCP loopback address, with a
	// warning. Refused for any other address.
	InsecureTCP bool
	// AdminListen is host:port for /healthz, /readyz and /metrics; empty
	// disables it.
	AdminListen string
	// Profiling serves net/http/pprof on the admin listener.
	Profiling bool
	// KeyAdminListen serves the key management API (LiteLLM-compatible
	// /key/*, /team/*, /user/*, /spend/*) on its own listener, never the
	// public one. Empty disables it.
	KeyAdminListen string
	// KeyAdmin builds that API's handler over the replica's key store and
	// spend book (controller/keyadmin's Builder, which holds the master
	// key). The API is control plane: the binary passes it in, so the
	// daemon does not import the controller. Required with KeyAdminListen.
	KeyAdmin func(keystore.Store, book.Reader) (http.Handler, error)
	// ReloadEvery is the config poll interval; zero means 2s.
	ReloadEvery time.Duration
	// DrainTimeout bounds graceful shutdown; zero means 30s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// AccessLog receives one JSON line per request (see
	// [extproc.Options.AccessLog]); nil disables it. Ignored when Server is
	// set.
	AccessLog io.Writer
	// Server, if set, is the extproc to serve (tests keep a handle on it to
	// read its metrics); nil creates one.
	Server *extproc.Server
	// Ready, if set, receives the bound addresses once serving.
	Ready func(grpcAddr, adminAddr, keyAdminAddr net.Addr)
}

// MaxMessageBytes is the largest ext_proc message accepted: a buffered body
// up to the configured limit plus headers and attributes. gRPC's 4 MiB
// default would refuse ordinary requests with images.
const MaxMessageBytes = 64 << 20

// StreamWorkers is how many gRPC stream handler goroutines are kept for
// reuse. Envoy keeps one stream open per request per filter level, so this
// covers about 64 concurrent requests per replica without a new goroutine.
const StreamWorkers = 128

// Run serves until ctx is cancelled, then drains open streams.
func Run(ctx context.Context, o Options) error {
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// go-redis prints every failed dial to stderr, so an outage would
	// write a line per reconnect attempt, unstructured. The breaker logs
	// the outage once; the client's own lines stay for debugging.
	redis.SetLogger(redisLog{o.Logger})
	srv := o.Server
	if srv == nil {
		srv = extproc.New(extproc.Options{Logger: o.Logger, AccessLog: o.AccessLog})
	}
	// Runs last, once every stream has ended (or was cut off): writes out
	// the buffered access log.
	defer srv.Close()
	if err := checkXDS(o); err != nil {
		return err
	}
	apply := func(raw []byte) error { return srv.LoadConfig(raw, o.Lookup) }
	var rl *reload.Reloader
	var xc *xdsclient.Client
	switch {
	case o.XDSServer != "":
		conn, err := dialXDS(o)
		if err != nil {
			return err
		}
		defer conn.Close()
		xc = xdsclient.New(xdsclient.Options{Conn: conn, NodeID: nodeID(o), Logger: o.Logger,
			Apply: func(cfg *config.Config, version string) error {
				err := checkMaxBody(cfg.MaxBody())
				if err == nil {
					err = srv.ApplyConfig(cfg, version)
				}
				srv.Metrics().Reload(err == nil)
				return err
			}})
	case o.ConfigPath != "":
		rl = &reload.Reloader{Path: o.ConfigPath, Apply: apply, Result: srv.Metrics().Reload, Log: o.Logger}
		if err := rl.Init(); err != nil {
			return err
		}
	default:
		if err := apply(o.ConfigYAML); err != nil {
			return fmt.Errorf("load embedded config: %w", err)
		}
	}
	if xc == nil {
		srv.Metrics().Reload(true)
		if err := checkMaxBody(srv.Runtime().MaxBody); err != nil {
			return err
		}
	}

	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	lis, creds, err := listenGRPC(o)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(append(creds,
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		// Reuse handler goroutines across streams: each ext_proc stream's
		// handler grows its stack, and a fresh goroutine per stream paid
		// runtime.newstack/copystack every time (~6% of CPU at c=64; ~2%
		// with workers). Streams beyond the workers still get their own
		// goroutine, so this only bounds reuse, not concurrency.
		grpc.NumStreamWorkers(StreamWorkers),
		// Envoy pings idle HTTP/2 connections; do not punish it for that.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)

	var adminSrv *http.Server
	var adminLis net.Listener
	if o.AdminListen != "" {
		adminLis, err = net.Listen("tcp", o.AdminListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("admin listen: %w", err)
		}
		adminSrv = &http.Server{Handler: admin.Handler(srv.Metrics().Registry, srv.NotReady, o.Profiling), ReadHeaderTimeout: 5 * time.Second}
	}

	var keySrv *http.Server
	var keyLis net.Listener
	if o.KeyAdminListen != "" {
		h, err := keyAdminHandler(srv, o.KeyAdmin)
		if err != nil {
			lis.Close()
			return fmt.Errorf("key admin API: %w", err)
		}
		keyLis, err = net.Listen("tcp", o.KeyAdminListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("key admin listen: %w", err)
		}
		keySrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	if keySrv != nil {
		wg.Go(func() {
			if err := keySrv.Serve(keyLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("key admin: %w", err)
			}
		})
	}
	wg.Go(func() {
		if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	})
	if adminSrv != nil {
		wg.Go(func() {
			if err := adminSrv.Serve(adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin: %w", err)
			}
		})
	}
	if xc != nil {
		wg.Go(func() { xc.Run(ctx) })
	}
	if rl != nil {
		every := o.ReloadEvery
		if every == 0 {
			every = 2 * time.Second
		}
		wg.Go(func() { rl.Run(ctx, every) })
	}
	var adminAddr net.Addr
	if adminLis != nil {
		adminAddr = adminLis.Addr()
	}
	if rt := srv.Runtime(); rt != nil {
		o.Logger.Info("weir extproc serving", "grpc", lis.Addr().String(), "admin", o.AdminListen, "config", o.ConfigPath, "config_hash", rt.Hash)
	} else {
		o.Logger.Info("weir extproc serving; not ready until the controller sends a config", "grpc", lis.Addr().String(), "admin", o.AdminListen, "xds_server", o.XDSServer)
	}
	var keyAddr net.Addr
	if keyLis != nil {
		keyAddr = keyLis.Addr()
		o.Logger.Info("key admin API serving", "addr", keyAddr.String())
	}
	if o.Ready != nil {
		o.Ready(lis.Addr(), adminAddr, keyAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	drain := o.DrainTimeout
	if drain == 0 {
		drain = 30 * time.Second
	}
	o.Logger.Info("shutting down; draining streams", "timeout", drain)
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(drain):
		gs.Stop()
	}
	for _, hs := range []*http.Server{adminSrv, keySrv} {
		if hs != nil {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			_ = hs.Shutdown(sctx)
			c()
		}
	}
	wg.Wait()
	return runErr
}

// checkMaxBody refuses a body limit the gRPC message limit cannot carry.
func checkMaxBody(max int64) error {
	if max+1<<20 > MaxMessageBytes {
		return fmt.Errorf("listener.max_body_bytes %d is above the supported %d", max, MaxMessageBytes-1<<20)
	}
	return nil
}

// keyAdminHandler builds the key admin API over srv's store and book.
func keyAdminHandler(srv *extproc.Server, build func(keystore.Store, book.Reader) (http.Handler, error)) (http.Handler, error) {
	if build == nil {
		return nil, errors.New("a listen address but no handler (Options.KeyAdmin)")
	}
	keys, spend, err := srv.KeyAdminBackend()
	if err != nil {
		return nil, err
	}
	return build(keys, spend)
}

// Listen opens host:port or unix:///path with no transport security, for
// tools such as the benchmark's null server that serve no credentials. A
// unix socket is made as for [Run], with [DefaultSocketMode].
func Listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		return listenUnix(p, DefaultSocketMode)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}
