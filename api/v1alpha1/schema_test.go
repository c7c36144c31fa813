package v1alpha1_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	kjson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdDir is where `make generate` writes the CRDs.
const crdDir = "../../manifests/crds"

// crd is a generated CRD with what the apiserver builds from it to admit
// objects: the structural schema (defaults, list types), the OpenAPI
// validator (types, patterns, enums, bounds) and the CEL validator.
type crd struct {
	v1         *apiextensionsv1.CustomResourceDefinition
	internal   *apiextensions.CustomResourceDefinition
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func loadCRD(t *testing.T, plural string) *crd {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(crdDir, "weir.dev_"+plural+".yaml"))
	if err != nil {
		t.Fatalf("%v (run make generate)", err)
	}
	var c crd
	c.v1 = new(apiextensionsv1.CustomResourceDefinition)
	if err := yaml.UnmarshalStrict(b, c.v1); err != nil {
		t.Fatal(err)
	}
	if len(c.v1.Spec.Versions) != 1 {
		t.Fatalf("%s: %d versions, want 1", plural, len(c.v1.Spec.Versions))
	}
	c.internal = new(apiextensions.CustomResourceDefinition)
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(c.v1, c.internal, nil); err != nil {
		t.Fatal(err)
	}
	s := new(apiextensions.JSONSchemaProps)
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(c.v1.Spec.Versions[0].Schema.OpenAPIV3Schema, s, nil); err != nil {
		t.Fatal(err)
	}
	if c.structural, err = structuralschema.NewStructural(s); err != nil {
		t.Fatal(err)
	}
	if c.schema, _, err = apiservervalidation.NewSchemaValidator(s); err != nil {
		t.Fatal(err)
	}
	c.cel = cel.NewValidator(c.structural, true, celconfig.PerCallLimit)
	return &c
}

// admit validates obj as the apiserver does on create: defaults, then the
// OpenAPI schema and list invariants, then (if those pass, as the apiserver
// does) the CEL rules. It returns the errors' strings.
func (c *crd) admit(obj map[string]any) []string {
	structuraldefaulting.Default(obj, c.structural)
	errs := apiservervalidation.ValidateCustomResource(nil, obj, c.schema)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, c.structural, obj)...)
	if len(errs) == 0 {
		celErrs, _ := c.cel.Validate(context.Background(), nil, c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// loadObjects reads the objects of a multi-document YAML file.
func loadObjects(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		// Through JSON with apimachinery's decoder, so that integers are
		// int64 as in the apiserver, not float64.
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var o map[string]any
		if err := kjson.Unmarshal(j, &o); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

// set changes the value at a dotted path ("spec.backends.0.name"); a nil
// value deletes it. Numeric segments index lists.
func set(obj map[string]any, path string, v any) {
	segs := strings.Split(path, ".")
	var cur any = obj
	for i, s := range segs {
		last := i == len(segs)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if v == nil {
					delete(c, s)
				} else {
					c[s] = v
				}
				return
			}
			if c[s] == nil {
				c[s] = map[string]any{}
			}
			cur = c[s]
		case []any:
			n, err := strconv.Atoi(s)
			if err != nil || n >= len(c) {
				panic(fmt.Sprintf("set %s: bad index %q", path, s))
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		default:
			panic(fmt.Sprintf("set %s: %T at %q", path, cur, s))
		}
	}
}

// TestCRDsPassAPIServerValidation runs the apiserver's own CRD validation:
// a CEL rule that does not compile or whose estimated cost is over the
// limit, or a printer column with a bad JSONPath, is refused here as
// `kubectl apply` of the CRD would refuse it.
func TestCRDsPassAPIServerValidation(t *testing.T) {
	for _, plural := range []string{"airoutes", "virtualkeys", "budgets"} {
		t.Run(plural, func(t *testing.T) {
			c := loadCRD(t, plural)
			// The apiserver sets storedVersions on create; a CRD in a
			// file has none.
			c.internal.Status.StoredVersions = []string{c.internal.Spec.Versions[0].Name}
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), c.internal); len(errs) > 0 {
				for _, e := range errs {
					t.Error(e)
				}
			}
		})
	}
}

func TestPrinterColumnsAndStatus(t *testing.T) {
	ready := `.status.conditions[?(@.type=="Ready")].status`
	for _, tc := range []struct {
		plural  string
		scope   apiextensionsv1.ResourceScope
		columns map[string]string // name -> JSONPath
	}{
		{"airoutes", apiextensionsv1.NamespaceScoped, map[string]string{
			"Hosts": ".spec.hostnames", "Models": ".spec.models[*].name", "Ready": ready,
		}},
		{"virtualkeys", apiextensionsv1.NamespaceScoped, map[string]string{
			"Team": ".spec.team", "Models": ".spec.models", "Spend": ".status.spend",
			"Budget": ".spec.maxBudget", "Expiry": ".spec.expiresAt", "Ready": ready,
		}},
		{"budgets", apiextensionsv1.ClusterScoped, map[string]string{
			"Kind": ".spec.subject.kind", "Subject": ".spec.subject.name", "Spend": ".status.spend",
			"Budget": ".spec.maxBudget", "Period": ".spec.budgetDuration", "Ready": ready,
		}},
	} {
		t.Run(tc.plural, func(t *testing.T) {
			c := loadCRD(t, tc.plural)
			if c.v1.Spec.Scope != tc.scope {
				t.Errorf("scope %s, want %s", c.v1.Spec.Scope, tc.scope)
			}
			v := c.v1.Spec.Versions[0]
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Error("no status subresource: the controller's status writes would race spec edits")
			}
			got := map[string]string{}
			for _, col := range v.AdditionalPrinterColumns {
				got[col.Name] = col.JSONPath
			}
			for name, path := range tc.columns {
				if got[name] != path {
					t.Errorf("column %s: JSONPath %q, want %q", name, got[name], path)
				}
			}
			status := v.Schema.OpenAPIV3Schema.Properties["status"]
			for _, f := range []string{"conditions", "observedGeneration"} {
				if _, ok := status.Properties[f]; !ok {
					t.Errorf("status has no %s", f)
				}
			}
			if cond := status.Properties["conditions"]; cond.XListType == nil || *cond.XListType != "map" {
				t.Error("status.conditions is not a map list keyed by type")
			}
		})
	}
}
