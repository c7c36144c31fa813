package registry

import (
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// The AIRoute CRD's provider enum (api/v1alpha1 ProviderKind) must list
// exactly the providers registered here: a provider missing from it could
// not be used from Kubernetes, and one the registry lacks would be
// accepted by the apiserver and then fail in every extproc. The CRD is
// read as YAML because extproc may not import api.
func TestAIRouteProviderEnumMatchesRegistry(t *testing.T) {
	b, err := os.ReadFile("../../../manifests/crds/weir.dev_airoutes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties struct {
							Spec struct {
								Properties struct {
									Backends struct {
										Items struct {
											Properties struct {
												Provider struct {
													Enum []string `json:"enum"`
												} `json:"provider"`
											} `json:"properties"`
										} `json:"items"`
									} `json:"backends"`
								} `json:"properties"`
							} `json:"spec"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	if len(crd.Spec.Versions) == 0 {
		t.Fatal("no versions in the AIRoute CRD")
	}
	got := slices.Clone(crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties.Spec.Properties.Backends.Items.Properties.Provider.Enum)
	slices.Sort(got)
	if want := Names(); !slices.Equal(got, want) {
		t.Errorf("AIRoute provider enum %v, registry %v: update ProviderKind's Enum marker in api/v1alpha1 and run make generate", got, want)
	}
}
