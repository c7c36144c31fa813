package v1alpha1_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/weir-ai/weir/config"
)

// homes says where each field of config's backends, models and keys lives
// in the CRDs: "plural:path" entries that must exist in the generated
// schema ("[]" steps into a list's items). A field with no home gives the
// reason instead, starting with "none:". A field added to one of these
// config types fails the test until it is listed here, so the Kubernetes
// path cannot silently lag the YAML one.
var homes = map[string][]string{
	"Backend.Name":           {"airoutes:spec.backends[].name"},
	"Backend.Provider":       {"airoutes:spec.backends[].provider"},
	"Backend.Preset":         {"airoutes:spec.backends[].preset"},
	"Backend.BaseURL":        {"airoutes:spec.backends[].endpoint.service", "airoutes:spec.backends[].endpoint.external.hostname", "airoutes:spec.backends[].endpoint.external.port", "airoutes:spec.backends[].endpoint.basePath"},
	"Backend.Credential":     {"airoutes:spec.backends[].credential"},
	"Backend.Headers":        {"airoutes:spec.backends[].headers[].value", "airoutes:spec.backends[].headers[].secretKeyRef"},
	"Backend.ForwardHeaders": {"airoutes:spec.backends[].forwardHeaders"},
	"Backend.ExposeHeaders":  {"airoutes:spec.backends[].exposeHeaders"},
	"Backend.Options":        {"airoutes:spec.backends[].options"},
	"Backend.Timeout":        {"airoutes:spec.backends[].timeout"},
	"Backend.AWS":            {"airoutes:spec.backends[].aws", "airoutes:spec.backends[].credential.aws"},
	"Backend.TLS":            {"airoutes:spec.backends[].endpoint.tls"},

	"BackendTLS.CAFile":          {"airoutes:spec.backends[].endpoint.tls.caCertificateRef"},
	"BackendTLS.ServerName":      {"airoutes:spec.backends[].endpoint.tls.serverName"},
	"BackendTLS.SubjectAltNames": {"airoutes:spec.backends[].endpoint.tls.subjectAltNames"},

	"AWSAuth.Region":          {"airoutes:spec.backends[].aws.region"},
	"AWSAuth.AccessKeyID":     {"airoutes:spec.backends[].credential.aws.accessKeyIDRef"},
	"AWSAuth.SecretAccessKey": {"airoutes:spec.backends[].credential.aws.secretAccessKeyRef"},
	"AWSAuth.SessionToken":    {"airoutes:spec.backends[].credential.aws.sessionTokenRef"},

	"Credential.Env":   {"none: the controller's environment is not the tenant's to read; Secrets replace it"},
	"Credential.File":  {"none: a file on the controller is not the tenant's to name; Secrets replace it"},
	"Credential.Value": {"airoutes:spec.backends[].credential.secretKeyRef", "airoutes:spec.backends[].credential.serviceAccountKeyRef"},
	"Credential.Key":   {"none: the resolved key, never configured"},

	"Model.Name":            {"airoutes:spec.models[].name"},
	"Model.Aliases":         {"airoutes:spec.models[].aliases"},
	"Model.Backends":        {"airoutes:spec.models[].backends"},
	"Model.ProviderModel":   {"airoutes:spec.models[].providerModel"},
	"Model.OwnedBy":         {"airoutes:spec.models[].ownedBy"},
	"Model.ContextWindow":   {"airoutes:spec.models[].contextWindow"},
	"Model.StoredResponses": {"airoutes:spec.models[].storedResponses"},

	"Listener.MaxBodyBytes": {"airoutes:spec.maxBodyBytes"},
	"Listener.Hostnames":    {"airoutes:spec.hostnames"},

	"Auth.Mode":          {"airoutes:spec.requireVirtualKey"},
	"Auth.Keys":          {"virtualkeys:spec"},
	"Auth.Users":         {"budgets:spec.subject.kind"},
	"Auth.Teams":         {"budgets:spec.subject.kind"},
	"Auth.Orgs":          {"budgets:spec.subject.kind"},
	"Auth.Global":        {"budgets:spec.subject.kind"},
	"Auth.OptionalPaths": {"none: gateway-wide listener setting (internal traffic without keys), not a route's or key's; it stays in the extproc's own config"},

	"KeyConfig.Hash":         {"none: the controller generates the key and derives the hash; no one writes it"},
	"KeyConfig.Alias":        {"none: the key's alias is its namespace/name"},
	"KeyConfig.LimitsID":     {"none: the VirtualKey's metadata.uid, so a rotated key keeps its counters"},
	"KeyConfig.Models":       {"virtualkeys:spec.models"},
	"KeyConfig.Aliases":      {"virtualkeys:spec.aliases"},
	"KeyConfig.ExpiresAt":    {"virtualkeys:spec.expiresAt"},
	"KeyConfig.Blocked":      {"virtualkeys:spec.blocked"},
	"KeyConfig.UserID":       {"virtualkeys:spec.user"},
	"KeyConfig.TeamID":       {"virtualkeys:spec.team"},
	"KeyConfig.OrgID":        {"virtualkeys:spec.organization"},
	"KeyConfig.Metadata":     {"virtualkeys:spec.metadata"},
	"KeyConfig.Tags":         {"virtualkeys:spec.tags"},
	"KeyConfig.LimitsConfig": {"virtualkeys:spec.maxBudget"},
	"KeyConfig.ModelLimits":  {"virtualkeys:spec.modelLimits[].model"},

	"SubjectConfig.ID":           {"budgets:spec.subject.name"},
	"SubjectConfig.LimitsConfig": {"budgets:spec.maxBudget"},
	"SubjectConfig.ModelLimits":  {"budgets:spec.modelLimits[].model"},
	"SubjectConfig.OrgID":        {"budgets:spec.organization"},
	"SubjectConfig.Models":       {"budgets:spec.models"},
	"SubjectConfig.Blocked":      {"budgets:spec.blocked"},
}

// limitHomes are the objects that embed Limits; every LimitsConfig field
// must be in each of them.
var limitHomes = []string{"virtualkeys:spec", "virtualkeys:spec.modelLimits[]", "budgets:spec", "budgets:spec.modelLimits[]"}

var limitFields = map[string]string{
	"MaxBudget": "maxBudget", "SoftBudget": "softBudget", "BudgetDuration": "budgetDuration",
	"RPM": "rpmLimit", "TPM": "tpmLimit", "MaxParallel": "maxParallelRequests",
}

func TestEveryConfigFieldHasACRDHome(t *testing.T) {
	schemas := map[string]*apiextensionsv1.JSONSchemaProps{}
	for _, p := range []string{"airoutes", "virtualkeys", "budgets"} {
		schemas[p] = loadCRD(t, p).v1.Spec.Versions[0].Schema.OpenAPIV3Schema
	}
	lookup := func(home string) bool {
		plural, path, _ := strings.Cut(home, ":")
		s := schemas[plural]
		for _, seg := range strings.Split(path, ".") {
			if s == nil {
				return false
			}
			name, list := strings.CutSuffix(seg, "[]")
			p, ok := s.Properties[name]
			if !ok {
				return false
			}
			s = &p
			if list {
				if s.Items == nil {
					return false
				}
				s = s.Items.Schema
			}
		}
		return s != nil
	}
	seen := map[string]bool{}
	for _, v := range []any{config.Backend{}, config.BackendTLS{}, config.AWSAuth{}, config.Credential{},
		config.Model{}, config.Listener{}, config.Auth{}, config.KeyConfig{}, config.SubjectConfig{}} {
		typ := reflect.TypeOf(v)
		for f := range typ.Fields() {
			key := typ.Name() + "." + f.Name
			seen[key] = true
			hs, ok := homes[key]
			if !ok {
				t.Errorf("config field %s has no home in the CRDs: add one (api/v1alpha1) and list it in homes, or list why it has none", key)
				continue
			}
			for _, h := range hs {
				if strings.HasPrefix(h, "none:") {
					continue
				}
				if !lookup(h) {
					t.Errorf("%s: home %s is not in the generated CRD", key, h)
				}
			}
		}
	}
	for key := range homes {
		if !seen[key] {
			t.Errorf("homes lists %s, which config no longer has", key)
		}
	}
	lt := reflect.TypeFor[config.LimitsConfig]()
	for f := range lt.Fields() {
		name, ok := limitFields[f.Name]
		if !ok {
			t.Errorf("config.LimitsConfig.%s has no CRD home: add it to Limits and limitFields", f.Name)
			continue
		}
		for _, h := range limitHomes {
			if !lookup(h + "." + name) {
				t.Errorf("LimitsConfig.%s: %s.%s is not in the generated CRD", f.Name, h, name)
			}
		}
	}
}

// The CRD's preset enum is config's preset table, so a new preset is
// usable from Kubernetes too. (The provider enum is checked against the
// extproc's registry in extproc/provider/registry, since api may not
// import extproc.)
func TestPresetEnumMatchesConfig(t *testing.T) {
	s := loadCRD(t, "airoutes").v1.Spec.Versions[0].Schema.OpenAPIV3Schema
	preset := s.Properties["spec"].Properties["backends"].Items.Schema.Properties["preset"]
	var got []string
	for _, e := range preset.Enum {
		got = append(got, strings.Trim(string(e.Raw), `"`))
	}
	slices.Sort(got)
	if want := config.Presets(); !slices.Equal(got, want) {
		t.Errorf("preset enum %v, config presets %v: update Preset's Enum marker and run make generate", got, want)
	}
}
