package v1alpha1_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/test/envtest"
)

// apiServer admits objects through a real kube-apiserver, built from
// source by make envtest-assets, with a server-side dry run: nothing is
// stored, so every case starts from the example again.
type apiServer struct {
	t *testing.T
	c client.Client
}

func (a apiServer) admit(obj map[string]any) []string {
	u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)}
	err := a.c.Create(context.Background(), u, client.DryRunAll)
	if err == nil {
		return nil
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details == nil || len(se.ErrStatus.Details.Causes) == 0 {
		return []string{err.Error()}
	}
	// The causes carry what the offline validators' errors say, split in
	// two: the field, then the rest.
	var out []string
	for _, c := range se.ErrStatus.Details.Causes {
		out = append(out, c.Field+": "+c.Message)
	}
	return out
}

// TestAdmissionAgainstAPIServer runs every admission case the offline
// validators pass or refuse (TestAIRouteAdmission, TestVirtualKeyAdmission,
// TestBudgetAdmission) against a real kube-apiserver with the generated
// CRDs installed: the same objects are admitted, and the same errors come
// back, so the offline tests cannot drift from what a cluster does.
func TestAdmissionAgainstAPIServer(t *testing.T) {
	_, c := envtest.StartWith(t, envtest.Options{CRDDirectoryPaths: []string{"../../manifests/crds"}})
	// The examples' namespaces.
	for _, f := range []string{routeExample, keyExample} {
		for _, obj := range loadObjects(t, f) {
			ns, _ := obj["metadata"].(map[string]any)["namespace"].(string)
			if ns == "" {
				continue
			}
			err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
	a := apiServer{t: t, c: c}
	t.Run("AIRoute", func(t *testing.T) { runAdmitCases(t, a, routeExample, 0, aiRouteCases()) })
	t.Run("VirtualKey", func(t *testing.T) { runAdmitCases(t, a, keyExample, 0, virtualKeyCases()) })
	t.Run("Budget", func(t *testing.T) { runAdmitCases(t, a, keyExample, 1, budgetCases()) })
	t.Run("global Budget", func(t *testing.T) {
		if errs := a.admit(loadObjects(t, keyExample)[2]); len(errs) > 0 {
			t.Fatal(strings.Join(errs, "\n"))
		}
	})
}
