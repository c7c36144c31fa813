// Package manifests tests the kustomize base in manifests/: it renders
// as `kubectl apply -k manifests/` would, and every object it renders is
// admitted by a real kube-apiserver (server-side dry run), so the
// installation cannot rot when a CRD, the RBAC markers or a flag change.
package manifests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/weir-ai/weir/test/envtest"
)

func render(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), "../../manifests")
	if err != nil {
		t.Fatalf("kustomize build manifests: %v", err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// TestBaseRenders: the base holds what the install needs, in
// weir-system, with the Envoy bootstrap and controller config generated
// from their files.
func TestBaseRenders(t *testing.T) {
	objs := render(t)
	want := map[string]bool{
		"CustomResourceDefinition/airoutes.weir.dev": false, "CustomResourceDefinition/virtualkeys.weir.dev": false,
		"CustomResourceDefinition/budgets.weir.dev": false, "ClusterRole/weir-controller": false,
		"ClusterRoleBinding/weir-controller": false, "ServiceAccount/weir-controller": false,
		"Deployment/weir-controller": false, "Service/weir-controller": false,
		"Deployment/weir-gateway": false, "Service/weir-gateway": false, "Namespace/weir-system": false,
	}
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		if _, ok := want[id]; ok {
			want[id] = true
		}
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "weir-envoy-bootstrap") {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			if !strings.Contains(data["bootstrap.yaml"], "weir-controller.weir-system.svc.cluster.local") {
				t.Errorf("the Envoy bootstrap does not point at the controller's Service")
			}
		}
		if ns := o.GetNamespace(); ns != "" && ns != "weir-system" {
			t.Errorf("%s in namespace %s, want weir-system", id, ns)
		}
	}
	for id, seen := range want {
		if !seen {
			t.Errorf("kustomize build manifests has no %s", id)
		}
	}
}

// TestAPIServer runs what needs a real API server against one: starting
// kube-apiserver and etcd is the slow part, so they share it.
func TestAPIServer(t *testing.T) {
	_, c := envtest.StartWith(t, envtest.Options{CRDDirectoryPaths: []string{"../../manifests/crds"}})
	t.Run("base admitted", func(t *testing.T) { testBaseAdmitted(t, c) })
	t.Run("examples apply", func(t *testing.T) { testExamplesApply(t, c) })
}

// testExamplesApply applies every document of every file in
// examples/kubernetes as `kubectl apply -f` does (server-side apply, for
// real, in the namespaces they name), so no example can rot.
func testExamplesApply(t *testing.T, c client.Client) {
	ctx := context.Background()
	files, err := filepath.Glob("../../examples/kubernetes/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v (%d files)", err, len(files))
	}
	made := map[string]bool{}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(raw), "\n---") {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if len(obj) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			if ns := u.GetNamespace(); ns != "" && !made[ns] {
				if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
				made[ns] = true
			}
			if err := c.Patch(ctx, u, client.RawPatch("application/apply-patch+yaml", []byte(doc)), client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
				t.Errorf("%s document %d (%s %s): %v", filepath.Base(f), i, u.GetKind(), u.GetName(), err)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("applied %d objects from the examples", n)
	}
}

// testBaseAdmitted applies the rendered base to a real API server with a
// server-side dry run (the namespace for real, so namespaced objects have
// somewhere to go).
func testBaseAdmitted(t *testing.T, c client.Client) {
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "weir-system"}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range render(t) {
		if o.GetKind() == "Namespace" {
			continue
		}
		o.SetManagedFields(nil)
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Patch(ctx, o, client.RawPatch("application/apply-patch+yaml", b), client.FieldOwner("weir-test"), client.ForceOwnership, client.DryRunAll)
		if err != nil {
			t.Errorf("%s %s: refused: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// TestContainerFlags runs each Weir container's command line from the
// base through the real binary with -h appended: a flag the binary does
// not define ("flag provided but not defined") fails, so the manifests
// cannot name a flag that was renamed or never existed.
func TestContainerFlags(t *testing.T) {
	dir := t.TempDir()
	bins := map[string]string{"weirctl": "./controller/cmd/weirctl", "weir": "./extproc/cmd/weir"}
	for name, pkg := range bins {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	n := 0
	for _, o := range render(t) {
		if o.GetKind() != "Deployment" {
			continue
		}
		// Walked by hand: kustomize's maps hold Go ints, which the
		// unstructured helpers' deep copy refuses.
		cs := anySlice(dig(o.Object, "spec", "template", "spec")["containers"])
		for _, c := range cs {
			cm := c.(map[string]any)
			var argv []string
			for _, a := range append(anySlice(cm["command"]), anySlice(cm["args"])...) {
				argv = append(argv, a.(string))
			}
			if len(argv) == 0 || bins[argv[0]] == "" {
				continue // not a Weir binary (Envoy)
			}
			n++
			cmd := exec.Command(filepath.Join(dir, argv[0]), append(argv[1:], "-h")...)
			out, _ := cmd.CombinedOutput()
			if strings.Contains(string(out), "flag provided but not defined") || strings.Contains(string(out), "unknown command") {
				t.Errorf("%s container %s: %s", o.GetName(), cm["name"], strings.SplitN(string(out), "\n", 2)[0])
			}
		}
	}
	if n < 2 {
		t.Fatalf("checked %d Weir containers, want the controller and the extproc", n)
	}
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m, _ = m[p].(map[string]any)
	}
	return m
}
