// Package devstack runs a whole Weir gateway in one process: the built-in
// fake providers, the extproc, and the Envoy harness as the data plane. It
// backs `weir dev` and the end-to-end tests, so both exercise exactly the
// same wiring. The data plane is a Go stand-in for Envoy, not Envoy.
//
// Every fake is started first and its base URL is offered to the config's
// ${VAR} expansion as WEIR_FAKE_<PROVIDER>_URL (see [Fakes]), so a user's own
// config can mix the fakes with real providers or a local server.
package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/keyadmin"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/extproc/daemon"
	"github.com/weir-ai/weir/extproc/reload"
	"github.com/weir-ai/weir/test/fakeprovider"
	"github.com/weir-ai/weir/test/harness"
)

// Fakes lists every built-in fake provider with the variable that carries
// its base URL to ${VAR} expansion (the embedded default config reads
// them). They are offered to the config only, never set in the process
// environment.
var Fakes = []struct {
	Kind fakeprovider.Kind
	Env  string
}{
	{fakeprovider.OpenAI, "WEIR_FAKE_OPENAI_URL"},
	{fakeprovider.Anthropic, "WEIR_FAKE_ANTHROPIC_URL"},
	{fakeprovider.Azure, "WEIR_FAKE_AZURE_URL"},
	{fakeprovider.Gemini, "WEIR_FAKE_GEMINI_URL"},
	{fakeprovider.Bedrock, "WEIR_FAKE_BEDROCK_URL"},
	{fakeprovider.Vertex, "WEIR_FAKE_VERTEX_URL"},
}

// Options configure [Start].
type Options struct {
	// Listen is the data plane address; "127.0.0.1:0" picks a free port.
	Listen string
	// AdminListen is the extproc admin address; empty disables it.
	AdminListen string
	// ConfigYAML is the extproc config; nil uses the embedded default.
	ConfigYAML []byte
	// ConfigPath, if set, is a config file used instead of ConfigYAML. It
	// is polled every ReloadEvery (zero means 2s) and, when its content
	// changes, both the extproc and the data plane are rebuilt from it; a
	// file that fails to load keeps the running config, as in
	// `weir extproc --config`.
	ConfigPath  string
	ReloadEvery time.Duration
	// MasterKey, when set, serves the key admin API on KeyAdminListen and
	// makes the public routes require a virtual key, as in production.
	MasterKey      string
	KeyAdminListen string
	// Lookup resolves ${VAR} after the fakes' URLs, which always win; nil
	// means os.LookupEnv.
	Lookup config.LookupFunc
	Logger *slog.Logger
	// AccessLog receives one JSON line per request; nil disables it.
	AccessLog io.Writer
	// Record bounds what the fakes record; zero keeps every request, as
	// tests that count upstream requests need. `weir dev` uses
	// fakeprovider.DevRecordLimit.
	Record fakeprovider.RecordLimit
}

// Stack is a running gateway.
type Stack struct {
	// URL is the data plane's base URL, "http://127.0.0.1:PORT".
	URL string
	// ExtProcAddr ("unix:///path") and AdminAddr are where the extproc
	// listens.
	ExtProcAddr string
	AdminAddr   string
	// Fakes by provider kind; OpenAI and Anthropic are shortcuts.
	Fake      map[fakeprovider.Kind]*fakeprovider.Server
	OpenAI    *fakeprovider.Server
	Anthropic *fakeprovider.Server
	// FakeURLs maps each [Fakes] variable to its fake's base URL.
	FakeURLs map[string]string
	// ConfigPath is [Options.ConfigPath]: empty when the config came from
	// memory.
	ConfigPath string
	// Server is the extproc, for reading its metrics in tests.
	Server *extproc.Server
	// KeyAdminAddr is where the key admin API listens, when enabled.
	KeyAdminAddr string

	lookup    config.LookupFunc
	epConn    *grpc.ClientConn
	epCli     extprocv3.ExternalProcessorClient
	plane     atomic.Pointer[plane]
	rl        *reload.Reloader
	rlMu      sync.Mutex // serializes reloads: the poller and [Stack.Reload]
	loaded    []byte     // the content the running plane was built from
	sockDir   string
	cancel    context.CancelFunc
	done      chan error
	rlDone    chan struct{}
	httpSrv   *http.Server
	closeOnce sync.Once
	closeErr  error
}

// plane is one config's data plane: the harness built from it and the
// parsed config, swapped whole on reload.
type plane struct {
	h   *harness.Harness
	cfg *config.Config
}

// Start brings the stack up and returns once every part is serving. A
// config that does not load is an error naming the file, if any.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	raw := o.ConfigYAML
	if o.ConfigPath != "" {
		b, err := os.ReadFile(o.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		raw = b
	} else if raw == nil {
		raw = config.DefaultYAML()
	}
	keyAdmin := ""
	if o.MasterKey != "" {
		// Production's rule: with an admin API, every request needs a key.
		// A config file is the user's own and, as in `weir extproc`, its
		// auth section decides; the banner says which applies.
		if o.ConfigPath == "" {
			raw = append(append([]byte(nil), raw...), "\nauth:\n  mode: keys\n"...)
		}
		keyAdmin = o.KeyAdminListen
		if keyAdmin == "" {
			keyAdmin = "127.0.0.1:8081"
		}
	}
	s := &Stack{
		Fake: map[fakeprovider.Kind]*fakeprovider.Server{}, FakeURLs: map[string]string{},
		ConfigPath: o.ConfigPath, done: make(chan error, 1),
	}
	for _, f := range Fakes {
		srv := fakeprovider.New(f.Kind)
		srv.SetRecordLimit(o.Record)
		u, err := srv.Start("127.0.0.1:0")
		if err != nil {
			s.closeFakes()
			return nil, err
		}
		s.Fake[f.Kind] = srv
		s.FakeURLs[f.Env] = u
	}
	s.OpenAI, s.Anthropic = s.Fake[fakeprovider.OpenAI], s.Fake[fakeprovider.Anthropic]
	s.lookup = func(k string) (string, bool) {
		if u, ok := s.FakeURLs[k]; ok {
			return u, true
		}
		return o.Lookup(k)
	}
	s.Server = extproc.New(extproc.Options{Logger: o.Logger, AccessLog: o.AccessLog})
	cfg, err := config.Parse(raw, s.lookup)
	if err == nil && o.ConfigPath != "" {
		// The whole load (it also compiles routes and prices), so a bad
		// file is reported here with its name rather than by the daemon.
		err = s.Server.LoadConfig(raw, s.lookup)
	}
	if err != nil {
		s.closeFakes()
		if o.ConfigPath != "" {
			return nil, fmt.Errorf("config %s: %w", o.ConfigPath, err)
		}
		return nil, err
	}

	// The extproc listens on a unix socket in a private directory: the
	// daemon refuses plaintext TCP, and a socket needs no certificates.
	if s.sockDir, err = os.MkdirTemp("", "weir-dev-"); err != nil {
		s.closeFakes()
		return nil, err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	ready := make(chan struct{})
	go func() {
		// The daemon loads the first config; reloads are the stack's, so
		// the data plane is rebuilt together with the extproc.
		s.done <- daemon.Run(ctx, daemon.Options{
			Server:         s.Server,
			ConfigYAML:     raw,
			Lookup:         s.lookup,
			Listen:         "unix://" + filepath.Join(s.sockDir, "extproc.sock"),
			AdminListen:    o.AdminListen,
			KeyAdminListen: keyAdmin,
			KeyAdmin:       keyadmin.Builder(o.MasterKey),
			Logger:         o.Logger,
			AccessLog:      o.AccessLog,
			Ready: func(g, a, k net.Addr) {
				s.ExtProcAddr = "unix://" + g.String()
				if a != nil {
					s.AdminAddr = a.String()
				}
				if k != nil {
					s.KeyAdminAddr = k.String()
				}
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-s.done:
		s.cancel()
		s.closeFakes()
		_ = os.RemoveAll(s.sockDir)
		return nil, fmt.Errorf("extproc: %w", err)
	}

	// One connection to the extproc, shared by every harness a reload
	// builds, so an old harness never needs closing under live requests.
	// Envoy's gRPC client has no message size limit by default; buffered
	// bodies travel whole.
	s.epConn, err = grpc.NewClient(s.ExtProcAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dial extproc: %w", err)
	}
	s.epCli = extprocv3.NewExternalProcessorClient(s.epConn)
	p, err := s.build(cfg, o.Logger)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.plane.Store(p)
	s.loaded = raw

	if o.ConfigPath != "" {
		log := o.Logger
		s.rl = &reload.Reloader{Path: o.ConfigPath, Result: s.Server.Metrics().Reload, Log: log,
			Apply: func(raw []byte) error { return s.apply(raw, log) }}
		// Init records the file as loaded (apply skips content it already
		// runs) or, if it changed since, loads the new content.
		if err := s.rl.Init(); err != nil {
			s.Close()
			return nil, err
		}
		every := o.ReloadEvery
		if every == 0 {
			every = 2 * time.Second
		}
		s.rlDone = make(chan struct{})
		go s.poll(ctx, every)
	}

	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.URL = "http://" + lis.Addr().String()
	s.httpSrv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(lis) }()
	return s, nil
}

// build makes the data plane for cfg.
func (s *Stack) build(cfg *config.Config, log *slog.Logger) (*plane, error) {
	res, err := xds.Build(cfg, xds.Options{ExtProcAddress: s.ExtProcAddr})
	if err != nil {
		return nil, err
	}
	h, err := harness.New(res, harness.Options{Logger: log, ExtProc: s.epCli})
	if err != nil {
		return nil, err
	}
	return &plane{h: h, cfg: cfg}, nil
}

// apply loads new config content into the extproc and swaps in a data
// plane built from it. Any failure keeps the running config whole.
func (s *Stack) apply(raw []byte, log *slog.Logger) error {
	if bytes.Equal(raw, s.loaded) {
		return nil
	}
	cfg, err := config.Parse(raw, s.lookup)
	if err != nil {
		return err
	}
	p, err := s.build(cfg, log)
	if err != nil {
		return err
	}
	if err := s.Server.LoadConfig(raw, s.lookup); err != nil {
		_ = p.h.Close()
		return err
	}
	old := s.plane.Swap(p)
	s.loaded = raw
	// Requests still on the old harness finish; only its idle upstream
	// connections go (its extproc connection is the shared one).
	_ = old.h.Close()
	return nil
}

func (s *Stack) poll(ctx context.Context, every time.Duration) {
	defer close(s.rlDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Reload()
		}
	}
}

// Reload checks the config file now, as the poller does every
// [Options.ReloadEvery], and reports whether new content was applied. A
// file that fails to load is an error and keeps the running config. Without
// [Options.ConfigPath] it does nothing.
func (s *Stack) Reload() (bool, error) {
	if s.rl == nil {
		return false, nil
	}
	s.rlMu.Lock()
	defer s.rlMu.Unlock()
	return s.rl.Check()
}

// Config returns the config the stack is running.
func (s *Stack) Config() *config.Config { return s.plane.Load().cfg }

// Harness returns the data plane serving now; a reload replaces it.
func (s *Stack) Harness() *harness.Harness { return s.plane.Load().h }

func (s *Stack) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.plane.Load().h.ServeHTTP(w, r)
}

// Wait blocks until the extproc stops.
func (s *Stack) Wait() error { return <-s.done }

// Close stops everything: the data plane first, then the extproc, which
// drains its streams. It is safe to call more than once.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Stack) close() error {
	var errs []error
	if s.httpSrv != nil {
		ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.httpSrv.Shutdown(ctx))
		c()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.rlDone != nil {
		<-s.rlDone
	}
	if p := s.plane.Load(); p != nil {
		errs = append(errs, p.h.Close())
	}
	if s.epConn != nil {
		errs = append(errs, s.epConn.Close())
	}
	if s.cancel != nil {
		errs = append(errs, <-s.done)
	}
	s.closeFakes()
	if s.sockDir != "" {
		errs = append(errs, os.RemoveAll(s.sockDir))
	}
	return errors.Join(errs...)
}

func (s *Stack) closeFakes() {
	for _, f := range s.Fake {
		_ = f.Close()
	}
}
