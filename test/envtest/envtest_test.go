package envtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestAPIServer runs the real API server once and checks what later
// controller tests rely on: built-in objects round-trip through etcd, and
// a CRD's CEL rule is enforced by the API server at create time.
func TestAPIServer(t *testing.T) {
	_, c := StartWith(t, Options{CRDDirectoryPaths: []string{filepath.Join("testdata", "crds")}})
	ctx := context.Background()

	t.Run("namespace and configmap round-trip", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "weir-envtest"}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "routes"},
			Data:       map[string]string{"model": "gpt-4o-mini"},
		}
		if err := c.Create(ctx, cm); err != nil {
			t.Fatalf("create configmap: %v", err)
		}
		var gotNS corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: ns.Name}, &gotNS); err != nil {
			t.Fatalf("get namespace: %v", err)
		}
		if gotNS.UID == "" || gotNS.Status.Phase != corev1.NamespaceActive {
			t.Errorf("namespace = uid %q phase %q, want a stored, Active namespace", gotNS.UID, gotNS.Status.Phase)
		}
		var got corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKeyFromObject(cm), &got); err != nil {
			t.Fatalf("get configmap: %v", err)
		}
		if got.Data["model"] != "gpt-4o-mini" || got.ResourceVersion == "" {
			t.Errorf("configmap = data %v resourceVersion %q, want the data written and a resourceVersion", got.Data, got.ResourceVersion)
		}
	})

	t.Run("CEL rule", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			min, max int64
			wantErr  string // "" means accepted
		}{
			{name: "equal", min: 3, max: 3},
			{name: "ordered", min: 1, max: 5},
			{name: "min above max", min: 6, max: 5, wantErr: "min must not exceed max"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "envtest.weir.dev/v1",
					"kind":       "Widget",
					"metadata":   map[string]any{"namespace": "default", "name": strings.ReplaceAll(tc.name, " ", "-")},
					"spec":       map[string]any{"min": tc.min, "max": tc.max},
				}}
				err := c.Create(ctx, w)
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("create: %v, want accepted", err)
					}
					return
				}
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("create: %v, want the API server's Invalid error with %q", err, tc.wantErr)
				}
			})
		}
	})
}

// fakeTB records how a test ended; Fatalf and Skipf stop here instead of
// calling runtime.Goexit, so the caller can inspect them.
type fakeTB struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, format
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, format
}

func TestMissingAssets(t *testing.T) {
	for _, tc := range []struct {
		name            string
		require         bool
		failed, skipped bool
	}{
		{name: "skips by default", skipped: true},
		{name: "fails when required", require: true, failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTB{}
			missing(f, tc.require, ErrNoAssets)
			if f.failed != tc.failed || f.skipped != tc.skipped {
				t.Errorf("failed=%v skipped=%v, want failed=%v skipped=%v", f.failed, f.skipped, tc.failed, tc.skipped)
			}
			if !strings.Contains(f.msg, "make envtest-assets") {
				t.Errorf("message %q does not say how to build the assets", f.msg)
			}
		})
	}
}

func TestFindAssets(t *testing.T) {
	// A module tree: root/go.mod, root/bin/envtest/{kube-apiserver,etcd},
	// and a package directory below it.
	root := t.TempDir()
	write := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), 0o644)
	pkg := filepath.Join(root, "controller", "airoute")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	built := filepath.Join(root, "bin", "envtest")
	write(filepath.Join(built, "kube-apiserver"), 0o755)
	write(filepath.Join(built, "etcd"), 0o755)
	noEtcd := filepath.Join(root, "only-apiserver")
	write(filepath.Join(noEtcd, "kube-apiserver"), 0o755)
	notExec := filepath.Join(root, "not-executable")
	write(filepath.Join(notExec, "kube-apiserver"), 0o755)
	write(filepath.Join(notExec, "etcd"), 0o644)
	outside := t.TempDir() // no go.mod above it
	wdErr := errors.New("no working directory")

	for _, tc := range []struct {
		name    string
		env     string
		wd      string
		wdErr   error
		want    string
		wantErr bool
	}{
		{name: "module's bin/envtest", wd: pkg, want: built},
		{name: "KUBEBUILDER_ASSETS wins", env: built, wd: outside, want: built},
		{name: "env without etcd", env: noEtcd, wd: pkg, wantErr: true},
		{name: "etcd not executable", env: notExec, wd: pkg, wantErr: true},
		{name: "no module root", wd: outside, wantErr: true},
		{name: "getwd fails", wdErr: wdErr, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findAssets(tc.env, func() (string, error) { return tc.wd, tc.wdErr })
			if tc.wantErr {
				if !errors.Is(err, ErrNoAssets) {
					t.Fatalf("findAssets = %q, %v; want ErrNoAssets", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("findAssets = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
