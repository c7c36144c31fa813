// Package envtest starts a real Kubernetes API server (kube-apiserver and
// etcd, built from source by `make envtest-assets`) for a test, through
// controller-runtime's envtest, and stops it when the test ends. Controller
// tests use it to check what only the API server can: CEL validation,
// status subresources, printer columns, watches.
//
// The binaries are looked up in $KUBEBUILDER_ASSETS, else in bin/envtest at
// the repository root. When they are missing the test is skipped with a
// message naming `make envtest-assets`, unless WEIR_REQUIRE_ENVTEST is set
// (CI sets it), where it fails instead: a CI run must never pass because
// its Kubernetes tests quietly did not run.
package envtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RequireEnv names the variable that turns missing assets into a failure.
const RequireEnv = "WEIR_REQUIRE_ENVTEST"

// assetsEnv is the variable controller-runtime's envtest reads the binary
// directory from.
const assetsEnv = "KUBEBUILDER_ASSETS"

// binaries are the ones envtest starts; kubectl is optional for it.
var binaries = []string{"kube-apiserver", "etcd"}

// startTimeout bounds each control-plane process's start. envtest's own
// 20 s default is short for a 2-core CI machine shared with a parallel
// `go test`; this is an upper bound, not a wait.
const startTimeout = 2 * time.Minute

// Options are what a test may add to a bare API server.
type Options struct {
	// CRDDirectoryPaths are directories (or files) of CRD manifests to
	// install before Start returns; Start waits until they are served.
	CRDDirectoryPaths []string
	// Scheme is the client's scheme; nil means client-go's (the built-in
	// types). Tests of Weir's CRDs pass one with api/v1alpha1 added.
	Scheme *runtime.Scheme
}

// Start starts a bare API server; see [StartWith].
func Start(t testing.TB) (*rest.Config, client.Client) {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts an API server with o's CRDs installed and returns an
// admin config and a client for it. It is stopped in t.Cleanup.
func StartWith(t testing.TB, o Options) (*rest.Config, client.Client) {
	t.Helper()
	e, err := launch(assets(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return e.REST, e.Client
}

// Env is an API server started outside a test, by a command that serves
// a whole stack until it is told to stop (test/kube/cmd/kubestack).
type Env struct {
	REST   *rest.Config
	Client client.Client
	env    *crenvtest.Environment
}

// Launch starts an API server with o's CRDs installed; the caller must
// [Env.Stop] it, or kube-apiserver and etcd outlive the process. Missing
// assets are an error wrapping the reason, naming `make envtest-assets`.
func Launch(o Options) (*Env, error) {
	dir, err := findAssets(os.Getenv(assetsEnv), os.Getwd)
	if err != nil {
		return nil, fmt.Errorf("envtest: %w; run `make envtest-assets`", err)
	}
	return launch(dir, o)
}

func launch(dir string, o Options) (*Env, error) {
	scheme := o.Scheme
	if scheme == nil {
		scheme = clientgoscheme.Scheme
	}
	env := &crenvtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        o.CRDDirectoryPaths,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  startTimeout,
	}
	cfg, err := env.Start()
	if err != nil {
		// A half-started control plane still has processes to stop.
		_ = env.Stop()
		return nil, fmt.Errorf("envtest: start the API server (assets %s): %w", dir, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("envtest: client: %w", err)
	}
	return &Env{REST: cfg, Client: c, env: env}, nil
}

// Stop stops kube-apiserver and etcd and removes their data.
func (e *Env) Stop() error {
	if err := e.env.Stop(); err != nil {
		return fmt.Errorf("envtest: stop the API server: %w", err)
	}
	return nil
}

// assets returns the directory holding the binaries, or ends the test:
// skipped, or failed under WEIR_REQUIRE_ENVTEST.
func assets(t testing.TB) string {
	t.Helper()
	dir, err := findAssets(os.Getenv(assetsEnv), os.Getwd)
	if err != nil {
		missing(t, os.Getenv(RequireEnv) != "", err)
	}
	return dir
}

// missing ends a test whose assets are absent; split out so the
// fail-or-skip rule is tested without an API server.
func missing(t testing.TB, require bool, err error) {
	t.Helper()
	if require {
		t.Fatalf("envtest: %v; %s is set, so this fails instead of skipping (run `make envtest-assets`)", err, RequireEnv)
		return
	}
	t.Skipf("envtest: %v; run `make envtest-assets` (set %s=1 to fail instead)", err, RequireEnv)
}

// ErrNoAssets is returned when a binary is missing from the directory
// (wrapped; test with errors.Is).
var ErrNoAssets = errors.New("kube-apiserver and etcd not built")

// findAssets picks the directory: env if set (envtest itself prefers it),
// else bin/envtest under the module root above the working directory,
// which is where `make envtest-assets` builds them, so `go test` works
// without exporting anything.
func findAssets(env string, getwd func() (string, error)) (string, error) {
	dir := env
	if dir == "" {
		wd, err := getwd()
		if err != nil {
			return "", fmt.Errorf("%w: working directory: %w", ErrNoAssets, err)
		}
		root, err := ModuleRoot(wd)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrNoAssets, err)
		}
		dir = filepath.Join(root, "bin", "envtest")
	}
	for _, b := range binaries {
		p := filepath.Join(dir, b)
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrNoAssets, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%w: %s is not an executable file", ErrNoAssets, p)
		}
	}
	return dir, nil
}

// ModuleRoot is the nearest directory at or above dir with a go.mod: the
// repository root, from a test's working directory.
func ModuleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}
