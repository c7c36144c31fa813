// Package devstack runs a whole Weir gateway in one process: the built-in
// fake providers, the extproc, and the Envoy harness as the data plane. It
// backs `weir dev` and the end-to-end tests, so both exercise exactly the
// same wiring. The data plane is a Go stand-in for Envoy, not Envoy.
package devstack

import (
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
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/extproc/daemon"
	"github.com/weir-ai/weir/test/fakeprovider"
	"github.com/weir-ai/weir/test/harness"
)

// Fakes lists every built-in fake provider with the env variable the
// embedded default config reads for its URL.
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
	// MasterKey, when set, serves the key admin API on KeyAdminListen and
	// makes the public routes require a virtual key, as in production.
	MasterKey      string
	KeyAdminListen string
	// Lookup resolves ${VAR}; the fakes' URLs are always provided.
	Lookup config.LookupFunc
	Logger *slog.Logger
	// AccessLog receives one JSON line per request; nil disables it.
	AccessLog io.Writer
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
	Harness   *harness.Harness
	// Server is the extproc, for reading its metrics in tests.
	Server *extproc.Server
	// KeyAdminAddr is where the key admin API listens, when enabled.
	KeyAdminAddr string

	sockDir   string
	cancel    context.CancelFunc
	done      chan error
	httpSrv   *http.Server
	closeOnce sync.Once
	closeErr  error
}

// Start brings the stack up and returns once every part is serving.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	raw := o.ConfigYAML
	if raw == nil {
		raw = config.DefaultYAML()
	}
	keyAdmin := ""
	if o.MasterKey != "" {
		// Production's rule: with an admin API, every request needs a key.
		raw = append(append([]byte(nil), raw...), "\nauth:\n  mode: keys\n"...)
		keyAdmin = o.KeyAdminListen
		if keyAdmin == "" {
			keyAdmin = "127.0.0.1:8081"
		}
	}
	s := &Stack{Fake: map[fakeprovider.Kind]*fakeprovider.Server{}, done: make(chan error, 1)}
	urls := map[string]string{}
	for _, f := range Fakes {
		srv := fakeprovider.New(f.Kind)
		u, err := srv.Start("127.0.0.1:0")
		if err != nil {
			s.closeFakes()
			return nil, err
		}
		s.Fake[f.Kind] = srv
		urls[f.Env] = u
	}
	s.OpenAI, s.Anthropic = s.Fake[fakeprovider.OpenAI], s.Fake[fakeprovider.Anthropic]
	lookup := func(k string) (string, bool) {
		if u, ok := urls[k]; ok {
			return u, true
		}
		return o.Lookup(k)
	}
	cfg, err := config.Parse(raw, lookup)
	if err != nil {
		s.closeFakes()
		return nil, err
	}

	// The extproc listens on a unix socket in a private directory: the
	// daemon refuses plaintext TCP, and a socket needs no certificates.
	if s.sockDir, err = os.MkdirTemp("", "weir-dev-"); err != nil {
		s.closeFakes()
		return nil, err
	}
	s.Server = extproc.New(extproc.Options{Logger: o.Logger, AccessLog: o.AccessLog})
	ctx, s.cancel = context.WithCancel(ctx)
	ready := make(chan struct{})
	go func() {
		s.done <- daemon.Run(ctx, daemon.Options{
			Server:         s.Server,
			ConfigYAML:     raw,
			Lookup:         lookup,
			Listen:         "unix://" + filepath.Join(s.sockDir, "extproc.sock"),
			AdminListen:    o.AdminListen,
			KeyAdminListen: keyAdmin,
			MasterKey:      o.MasterKey,
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
		s.closeFakes()
		_ = os.RemoveAll(s.sockDir)
		return nil, fmt.Errorf("extproc: %w", err)
	}

	res, err := xds.Build(cfg, xds.Options{ExtProcAddress: s.ExtProcAddr})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Harness, err = harness.New(res, harness.Options{Logger: o.Logger})
	if err != nil {
		s.Close()
		return nil, err
	}
	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.URL = "http://" + lis.Addr().String()
	s.httpSrv = &http.Server{Handler: s.Harness, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(lis) }()
	return s, nil
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
	if s.Harness != nil {
		errs = append(errs, s.Harness.Close())
	}
	if s.cancel != nil {
		s.cancel()
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
