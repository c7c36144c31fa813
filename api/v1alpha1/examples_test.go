package v1alpha1_test

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/weir-ai/weir/api/v1alpha1"
)

// Every weir.dev object in examples/kubernetes is admitted by its CRD, so
// no example can rot when a type changes.
func TestExamplesAreAdmitted(t *testing.T) {
	files, err := filepath.Glob("../../examples/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found (%v)", err)
	}
	crds := map[string]*crd{
		"AIRoute":    loadCRD(t, "airoutes"),
		"VirtualKey": loadCRD(t, "virtualkeys"),
		"Budget":     loadCRD(t, "budgets"),
	}
	kinds := map[string]int{}
	for _, f := range files {
		for i, obj := range loadObjects(t, f) {
			kind, _ := obj["kind"].(string)
			c, ok := crds[kind]
			if !ok || obj["apiVersion"] != v1alpha1.GroupVersion.String() {
				continue // a Secret or other core object
			}
			kinds[kind]++
			if errs := c.admit(obj); len(errs) > 0 {
				t.Errorf("%s document %d (%s): refused:\n%s", filepath.Base(f), i, kind, strings.Join(errs, "\n"))
			}
		}
	}
	for kind := range crds {
		if kinds[kind] == 0 {
			t.Errorf("no example of %s", kind)
		}
	}
}

// AddToScheme registers each kind and its list under weir.dev/v1alpha1,
// as the controller's client needs.
func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"AIRoute", "AIRouteList", "VirtualKey", "VirtualKeyList", "Budget", "BudgetList"} {
		if !s.Recognizes(schema.GroupVersionKind{Group: "weir.dev", Version: "v1alpha1", Kind: kind}) {
			t.Errorf("scheme does not know %s", kind)
		}
	}
}
