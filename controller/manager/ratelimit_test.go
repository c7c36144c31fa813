package manager

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/api/v1alpha1"
)

// TestRateLimit: the options' QPS and Burst replace the connection's only
// when set, and never modify the caller's rest.Config.
func TestRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        rest.Config
		qps       float32
		burst     int
		wantQPS   float32
		wantBurst int
	}{
		{name: "unset keeps the connection's", in: rest.Config{QPS: -1}, wantQPS: -1},
		{name: "unset keeps envtest's", in: rest.Config{QPS: 1000, Burst: 2000}, wantQPS: 1000, wantBurst: 2000},
		{name: "raised", in: rest.Config{QPS: 20, Burst: 30}, qps: 200, burst: 400, wantQPS: 200, wantBurst: 400},
		{name: "negative qps disables the client-side limit", in: rest.Config{QPS: 20, Burst: 30}, qps: -1, wantQPS: -1, wantBurst: 30},
		{name: "burst alone", in: rest.Config{QPS: 20, Burst: 30}, burst: 100, wantQPS: 20, wantBurst: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got := rateLimited(&in, tc.qps, tc.burst)
			if got.QPS != tc.wantQPS || got.Burst != tc.wantBurst {
				t.Errorf("QPS, Burst = %v, %d; want %v, %d", got.QPS, got.Burst, tc.wantQPS, tc.wantBurst)
			}
			if in.QPS != tc.in.QPS || in.Burst != tc.in.Burst {
				t.Errorf("the caller's config changed: %+v", in)
			}
		})
	}
}

// TestCacheDropsManagedFields: the informers keep objects without their
// managedFields, which the controller never reads and which were the
// largest part of copying 10,000 VirtualKeys and their Secrets out of the
// cache on every gateway pass.
func TestCacheDropsManagedFields(t *testing.T) {
	for _, obj := range []client.Object{
		&v1alpha1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Name: "k", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "weir-issuer"}}}},
	} {
		out, err := cacheOptions().DefaultTransform(obj)
		if err != nil {
			t.Fatal(err)
		}
		if mf := out.(client.Object).GetManagedFields(); mf != nil {
			t.Errorf("%T kept managedFields %v", obj, mf)
		}
	}
}
