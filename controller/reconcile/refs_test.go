package reconcile

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/keys"
)

// TestRelevant: only the Secrets and Services a route names, and the
// keys' own Secrets, cause a gateway pass; the rest of a cluster's churn
// does not.
func TestRelevant(t *testing.T) {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	route := &v1alpha1.AIRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: "ai"},
		Spec: v1alpha1.AIRouteSpec{Backends: []v1alpha1.Backend{
			{Name: "openai", Credential: &v1alpha1.Credential{SecretKeyRef: &v1alpha1.SecretKeyRef{Name: "openai-key", Key: "k"}},
				Headers: []v1alpha1.UpstreamHeader{{Name: "x-org", SecretKeyRef: &v1alpha1.SecretKeyRef{Name: "org", Key: "k"}}}},
			{Name: "bedrock", Credential: &v1alpha1.Credential{AWS: &v1alpha1.AWSKeys{
				AccessKeyIDRef: v1alpha1.SecretKeyRef{Name: "aws-id", Key: "k"}, SecretAccessKeyRef: v1alpha1.SecretKeyRef{Name: "aws-secret", Key: "k"},
				SessionTokenRef: &v1alpha1.SecretKeyRef{Name: "aws-session", Key: "k"}}}},
			{Name: "vertex", Credential: &v1alpha1.Credential{ServiceAccountKeyRef: &v1alpha1.SecretKeyRef{Name: "gcp-sa", Key: "k"}}},
			{Name: "vllm", Endpoint: &v1alpha1.Endpoint{Service: &v1alpha1.ServiceReference{Name: "vllm", Port: 8000}}},
		}},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(route).
		WithIndex(&v1alpha1.AIRoute{}, indexSecrets, routeSecrets).
		WithIndex(&v1alpha1.AIRoute{}, indexServices, routeServices).Build()
	secret := func(ns, name string, labels map[string]string) client.Object {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}
	svc := func(ns, name string) client.Object {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	for _, tt := range []struct {
		name string
		obj  client.Object
		want bool
	}{
		{"credential", secret("ai", "openai-key", nil), true},
		{"header", secret("ai", "org", nil), true},
		{"aws access key", secret("ai", "aws-id", nil), true},
		{"aws secret key", secret("ai", "aws-secret", nil), true},
		{"aws session token", secret("ai", "aws-session", nil), true},
		{"vertex service account", secret("ai", "gcp-sa", nil), true},
		{"an issued key", secret("team", "app-key", map[string]string{keys.LabelVirtualKey: "app"}), true},
		{"same name, other namespace", secret("other", "openai-key", nil), false},
		{"unrelated secret", secret("ai", "helm.release.v1", nil), false},
		{"backend service", svc("ai", "vllm"), true},
		{"service elsewhere", svc("other", "vllm"), false},
		{"unrelated service", svc("ai", "web"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := relevant(context.Background(), c, tt.obj); got != tt.want {
				t.Fatalf("relevant = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMicroUSD(t *testing.T) {
	for in, want := range map[int64]v1alpha1.USD{
		0: "0", -5: "0", 1: "0.000001", 12_340_000: "12.34", 30_000_001: "30.000001",
		25_500_000: "25.5", 1_000_000: "1", 999_999_999_999_000_000: "999999999999",
	} {
		if got := microUSD(in); got != want {
			t.Errorf("microUSD(%d) = %q, want %q", in, got, want)
		}
	}
}
