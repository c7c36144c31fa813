package reconcile_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/keys"
	"github.com/weir-ai/weir/controller/reconcile"
	"github.com/weir-ai/weir/test/envtest"
)

// env is one API server and one manager shared by the subtests of
// TestController: starting kube-apiserver and etcd is the slow part.
type env struct {
	c client.Client
}

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func start(t *testing.T) *env {
	t.Helper()
	s := scheme(t)
	cfg, c := envtest.StartWith(t, envtest.Options{CRDDirectoryPaths: []string{"../../manifests/crds"}, Scheme: s})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&reconcile.Issuer{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return &env{c: c}
}

// eventually polls cond until it holds: the controller acts on watch
// events, so the test waits for the outcome, not for a fixed time. The
// bound only ends a test that would otherwise hang.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached (last error: %v)", what, last)
}

func (e *env) namespace(t *testing.T, name string) {
	t.Helper()
	if err := e.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func TestController(t *testing.T) {
	e := start(t)
	t.Run("issuance and rotation", e.testIssuance)
}

func (e *env) testIssuance(t *testing.T) {
	ctx := context.Background()
	e.namespace(t, "issue")
	vk := &v1alpha1.VirtualKey{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "issue"},
		Spec: v1alpha1.VirtualKeySpec{
			Routes:   []v1alpha1.RouteReference{{Name: "chat"}},
			Rotation: &v1alpha1.Rotation{GracePeriod: &metav1.Duration{Duration: 10 * time.Minute}},
		},
	}
	if err := e.c.Create(ctx, vk); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: "issue", Name: "app-key"}
	eventually(t, "key issued", func() (bool, error) {
		if err := e.c.Get(ctx, key, secret); err != nil {
			return false, err
		}
		return len(secret.Data[keys.DataKey]) > 0, nil
	})
	first := string(secret.Data[keys.DataKey])
	if len(first) != len("sk-weir-")+43 || first[:8] != "sk-weir-" {
		t.Fatalf("issued key has the wrong form (%d chars)", len(first))
	}
	if o := secret.OwnerReferences; len(o) != 1 || o[0].UID != vk.UID || o[0].Controller == nil || !*o[0].Controller {
		t.Fatalf("secret owners %+v, want the VirtualKey as controller", o)
	}
	eventually(t, "status names the secret", func() (bool, error) {
		err := e.c.Get(ctx, client.ObjectKeyFromObject(vk), vk)
		return err == nil && vk.Status.SecretName == "app-key" && vk.Status.LastRotatedAt != nil, err
	})

	// Rotate.
	vk.Annotations = map[string]string{v1alpha1.RotateAnnotation: "2026-12-06T16:00:00Z"}
	if err := e.c.Update(ctx, vk); err != nil {
		t.Fatal(err)
	}
	eventually(t, "key rotated", func() (bool, error) {
		err := e.c.Get(ctx, key, secret)
		return err == nil && string(secret.Data[keys.DataKey]) != first, err
	})
	is, ok := keys.Read(secret, time.Now())
	if !ok || len(is.Previous) != 1 || is.Previous[0].Hash != keys.Hash(first) {
		t.Fatalf("after rotation the Secret keeps %+v, want the first key's hash in grace", is.Previous)
	}
	if got := is.Previous[0].ExpiresAt.Sub(is.IssuedAt.Truncate(time.Second)); got < 10*time.Minute-time.Second || got > 10*time.Minute+time.Second {
		t.Errorf("previous key valid %s after the rotation, want the 10m grace period", got)
	}
	eventually(t, "status shows the grace period", func() (bool, error) {
		err := e.c.Get(ctx, client.ObjectKeyFromObject(vk), vk)
		return err == nil && vk.Status.PreviousKeyExpiresAt != nil && vk.Status.PreviousKeyExpiresAt.Equal(&metav1.Time{Time: is.Previous[0].ExpiresAt}), err
	})

	// Someone deletes the Secret: a new key is issued (the old one is gone
	// with it, so nothing stays in grace).
	second := string(secret.Data[keys.DataKey])
	if err := e.c.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "key reissued after the Secret was deleted", func() (bool, error) {
		err := e.c.Get(ctx, key, secret)
		k := string(secret.Data[keys.DataKey])
		return err == nil && k != "" && k != second && k != first, err
	})
}
