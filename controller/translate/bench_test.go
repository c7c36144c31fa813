package translate

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
)

// scaleInput is the scale target: 2,000 AIRoutes in 200
// namespaces, each with two models (one with an alias; every tenth route
// adds a "prefix/*" pattern) on two backends (an external one with a
// Secret, an in-cluster Service), and 10,000 VirtualKeys, five per
// route, half of them with a model list, a tenth rotated with a previous
// hash in its grace period; 200 team Budgets.
func scaleInput(routes, keys int) Input {
	in := Input{Base: testBase(), Now: testNow, ClusterDomain: "cluster.local", Issued: map[types.NamespacedName]IssuedKey{}}
	created := metav1.NewTime(testNow.Add(-24 * time.Hour))
	for n := range routes / 10 {
		ns := fmt.Sprintf("team-%d", n)
		in.Secrets = append(in.Secrets, corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "openai", Namespace: ns}, Data: map[string][]byte{"api-key": []byte("sk-" + ns)}})
		in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "vllm", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8000}}}})
		in.Budgets = append(in.Budgets, weirv1a1.Budget{
			ObjectMeta: metav1.ObjectMeta{Name: ns, CreationTimestamp: created},
			Spec:       weirv1a1.BudgetSpec{Subject: weirv1a1.Subject{Kind: weirv1a1.SubjectTeam, Name: ns}, Limits: weirv1a1.Limits{MaxBudget: "1000", BudgetDuration: "1mo"}},
		})
	}
	for i := range routes {
		ns := fmt.Sprintf("team-%d", i/10)
		r := weirv1a1.AIRoute{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("route-%d", i), Namespace: ns, Generation: 1, CreationTimestamp: created},
			Spec: weirv1a1.AIRouteSpec{
				Hostnames: []weirv1a1.Hostname{weirv1a1.Hostname(ns + ".example.com")},
				Models: []weirv1a1.Model{
					{Name: fmt.Sprintf("gpt-%d", i), Aliases: []string{fmt.Sprintf("smart-%d", i)}, Backends: []string{"openai", "vllm"}},
					{Name: fmt.Sprintf("llama-%d", i), Backends: []string{"vllm"}},
				},
				Backends: []weirv1a1.Backend{
					{Name: "openai", Provider: "openai", Endpoint: &weirv1a1.Endpoint{External: &weirv1a1.ExternalEndpoint{Hostname: "api.openai.com"}, BasePath: "/v1"},
						Credential: &weirv1a1.Credential{SecretKeyRef: &weirv1a1.SecretKeyRef{Name: "openai", Key: "api-key"}}},
					{Name: "vllm", Provider: "openai", Endpoint: &weirv1a1.Endpoint{Service: &weirv1a1.ServiceReference{Name: "vllm", Port: 8000}, BasePath: "/v1"}},
				},
			},
		}
		if i%10 == 0 {
			r.Spec.Models = append(r.Spec.Models, weirv1a1.Model{Name: fmt.Sprintf("p%d/*", i), Backends: []string{"openai"}})
		}
		in.Routes = append(in.Routes, r)
	}
	for i := range keys {
		ri := i % routes
		ns := fmt.Sprintf("team-%d", ri/10)
		k := weirv1a1.VirtualKey{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("key-%d", i), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%d", i)), Generation: 1, CreationTimestamp: created},
			Spec: weirv1a1.VirtualKeySpec{
				Routes: []weirv1a1.RouteReference{{Name: fmt.Sprintf("route-%d", ri)}},
				Limits: weirv1a1.Limits{MaxBudget: "100", BudgetDuration: "30d", RPMLimit: 600},
				Team:   ns, User: fmt.Sprintf("user-%d", i),
			},
		}
		if i%2 == 0 {
			k.Spec.Models = []string{fmt.Sprintf("gpt-%d", ri), fmt.Sprintf("p%d/x", ri)}
		}
		ik := IssuedKey{Hash: testHash(fmt.Sprint("key", i))}
		if i%10 == 0 {
			ik.Previous = []PreviousKey{{Hash: testHash(fmt.Sprint("old", i)), ExpiresAt: testNow.Add(time.Hour)}}
		}
		in.Issued[types.NamespacedName{Namespace: ns, Name: k.Name}] = ik
		in.Keys = append(in.Keys, k)
	}
	return in
}

// TestScaleInput: the benchmark's input translates with nothing refused
// and a valid config, so the benchmark measures the real path.
func TestScaleInput(t *testing.T) {
	in := scaleInput(200, 1000)
	out := Translate(in)
	if err := out.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	for obj, st := range out.Status {
		for _, c := range st.Conditions {
			if c.Status != metav1.ConditionTrue {
				t.Fatalf("%v: %s %s: %s", obj, c.Type, c.Reason, c.Message)
			}
		}
	}
	if n := len(out.Config.Auth.Keys); n != 1100 {
		t.Errorf("%d keys, want 1100", n)
	}
}

func BenchmarkTranslate(b *testing.B) {
	in := scaleInput(2000, 10000)
	b.ReportAllocs()
	for b.Loop() {
		Translate(in)
	}
}
