package v1alpha1_test

import (
	"strings"
	"testing"
)

// The examples are the base objects: each case changes one thing in a
// copy and states the error the apiserver answers with (a substring), or
// "" for an object that must be admitted.
const (
	routeExample = "../../examples/kubernetes/airoute.yaml"
	keyExample   = "../../examples/kubernetes/virtualkey.yaml"
)

type admitCase struct {
	name  string
	patch func(o map[string]any)
	want  string
}

// admitter admits an object as the apiserver does on create, returning the
// errors' strings: the offline validators (*crd), or a real kube-apiserver
// (apiServer).
type admitter interface {
	admit(obj map[string]any) []string
}

func runAdmitCases(t *testing.T, c admitter, file string, doc int, cases []admitCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := loadObjects(t, file)[doc] // fresh copy per case
			if tc.patch != nil {
				tc.patch(obj)
			}
			errs := c.admit(obj)
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("refused, want admitted:\n%s", strings.Join(errs, "\n"))
				}
				return
			}
			for _, e := range errs {
				if matches(e, tc.want) {
					return
				}
			}
			t.Fatalf("errors %q, want one matching %q", errs, tc.want)
		})
	}
}

func m(kv ...any) map[string]any {
	o := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		o[kv[i].(string)] = kv[i+1]
	}
	return o
}

// rule is how the apiserver reports a failed CEL rule: the path of the
// field the rule is on, the value if a scalar, then the rule's message.
// Asserting the path checks that the rule sits on the intended field.
func rule(path, msg string) string { return path + ": Invalid value: " + ruleSep + msg }

// ruleSep separates the two parts of a rule's want, which must occur in
// the same error in that order.
const ruleSep = "\x00"

func matches(err, want string) bool {
	head, msg, isRule := strings.Cut(want, ruleSep)
	if !isRule {
		return strings.Contains(err, want)
	}
	return strings.HasPrefix(err, head) && strings.Contains(err[len(head):], msg)
}

func l(v ...any) []any { return v }

func ref(name, key string) map[string]any { return m("name", name, "key", key) }

func TestAIRouteAdmission(t *testing.T) {
	runAdmitCases(t, loadCRD(t, "airoutes"), routeExample, 0, aiRouteCases())
}

const (
	be0 = "spec.backends.0"
	md0 = "spec.models.0"
	md1 = "spec.models.1"
)

func aiRouteCases() []admitCase {
	return []admitCase{
		{"example", nil, ""},
		{"preset alone fills provider and endpoint", func(o map[string]any) {
			set(o, be0+".provider", nil)
			set(o, be0+".endpoint", nil)
			set(o, be0+".preset", "groq")
		}, ""},
		{"vertex with a service-account key", func(o map[string]any) {
			set(o, be0+".provider", "vertex")
			set(o, be0+".credential", m("serviceAccountKeyRef", ref("gcp", "key.json")))
		}, ""},
		{"bedrock with static AWS keys", func(o map[string]any) {
			set(o, "spec.backends.2.credential", m("aws", m("accessKeyIDRef", ref("aws", "id"), "secretAccessKeyRef", ref("aws", "secret"))))
		}, ""},

		// Credentials: exactly one source, each for its provider.
		{"two credential sources", func(o map[string]any) {
			set(o, be0+".credential.serviceAccountKeyRef", ref("gcp", "key.json"))
		}, rule("spec.backends[0].credential", "set exactly one of secretKeyRef, serviceAccountKeyRef or aws")},
		{"empty credential", func(o map[string]any) {
			set(o, be0+".credential", m())
		}, rule("spec.backends[0].credential", "set exactly one of secretKeyRef, serviceAccountKeyRef or aws")},
		{"secretKeyRef without key", func(o map[string]any) {
			set(o, be0+".credential.secretKeyRef", m("name", "openai-key"))
		}, "key: Required value"},
		{"service-account key on openai", func(o map[string]any) {
			set(o, be0+".credential", m("serviceAccountKeyRef", ref("gcp", "key.json")))
		}, rule("spec.backends[0]", "credential.serviceAccountKeyRef is only for provider vertex")},
		{"AWS keys on openai", func(o map[string]any) {
			set(o, be0+".credential", m("aws", m("accessKeyIDRef", ref("aws", "id"), "secretAccessKeyRef", ref("aws", "secret"))))
		}, rule("spec.backends[0]", "credential.aws is only for provider bedrock")},
		{"aws region on openai", func(o map[string]any) {
			set(o, be0+".aws", m("region", "us-east-1"))
		}, rule("spec.backends[0]", "aws is only for provider bedrock")},
		{"malformed aws region", func(o map[string]any) {
			set(o, "spec.backends.2.aws.region", "US East")
		}, "spec.backends[2].aws.region"},

		// Providers and endpoints.
		{"unknown provider", func(o map[string]any) {
			set(o, be0+".provider", "cohere")
		}, `Unsupported value: "cohere"`},
		{"unknown preset", func(o map[string]any) {
			set(o, be0+".preset", "acme")
		}, `Unsupported value: "acme"`},
		{"neither provider nor preset", func(o map[string]any) {
			set(o, be0+".provider", nil)
		}, rule("spec.backends[0]", "set provider or preset")},
		{"no endpoint without a preset", func(o map[string]any) {
			set(o, be0+".endpoint", nil)
		}, rule("spec.backends[0]", "endpoint is required unless a preset supplies it")},
		{"service and external", func(o map[string]any) {
			set(o, be0+".endpoint.service", m("name", "vllm", "port", int64(8000)))
		}, rule("spec.backends[0].endpoint", "set exactly one of service or external")},
		{"neither service nor external", func(o map[string]any) {
			set(o, be0+".endpoint.external", nil)
		}, rule("spec.backends[0].endpoint", "set exactly one of service or external")},
		{"external host is an URL", func(o map[string]any) {
			set(o, be0+".endpoint.external.hostname", "https://api.openai.com")
		}, "spec.backends[0].endpoint.external.hostname"},
		{"service port out of range", func(o map[string]any) {
			set(o, "spec.backends.1.endpoint.service.port", int64(70000))
		}, "should be less than or equal to 65535"},
		{"backend name not a DNS label", func(o map[string]any) {
			set(o, be0+".name", "OpenAI")
			set(o, md0+".backends", l("OpenAI", "vllm"))
			set(o, "spec.models.2.backends", l("OpenAI"))
		}, "spec.backends[0].name"},

		// Durations.
		{"timeout not a duration", func(o map[string]any) {
			set(o, be0+".timeout", "5 minutes")
		}, "spec.backends[0].timeout"},
		{"timeout zero", func(o map[string]any) {
			set(o, be0+".timeout", "0s")
		}, rule("spec.backends[0].timeout", "timeout must be more than 0s and at most 1h")},
		{"timeout over an hour", func(o map[string]any) {
			set(o, be0+".timeout", "2h")
		}, rule("spec.backends[0].timeout", "timeout must be more than 0s and at most 1h")},

		// Headers.
		{"forwarding a credential header", func(o map[string]any) {
			set(o, be0+".forwardHeaders", l("authorization"))
		}, rule("spec.backends[0].forwardHeaders", "credentials, connection and framing headers")},
		{"forwarding x-amz-*", func(o map[string]any) {
			set(o, be0+".forwardHeaders", l("x-amz-date"))
		}, rule("spec.backends[0].forwardHeaders", "credentials, connection and framing headers")},
		{"upper-case forward header", func(o map[string]any) {
			set(o, be0+".forwardHeaders", l("X-Tenant"))
		}, "spec.backends[0].forwardHeaders[0]"},
		{"exposing set-cookie", func(o map[string]any) {
			set(o, be0+".exposeHeaders", l("set-cookie"))
		}, rule("spec.backends[0].exposeHeaders", "set-cookie, connection and framing headers")},
		{"header with value and secret", func(o map[string]any) {
			set(o, be0+".headers.0.value", "org-1")
		}, rule("spec.backends[0].headers[0]", "set exactly one of value or secretKeyRef")},
		{"header x-weir-*", func(o map[string]any) {
			set(o, be0+".headers.0.name", "x-weir-team")
		}, rule("spec.backends[0].headers[0].name", "x-weir-* headers are the gateway's own")},

		// Models: wildcards, aliases, backends.
		{"wildcard not at the end", func(o map[string]any) {
			set(o, md0+".name", "gpt-*-mini")
		}, "spec.models[0].name"},
		{"wildcard alias", func(o map[string]any) {
			set(o, md0+".aliases", l("gpt*"))
		}, "spec.models[0].aliases[0]"},
		{"alias equals a model name", func(o map[string]any) {
			set(o, md1+".aliases", l("gpt-4o"))
		}, rule("spec", "an alias must not equal a model name")},
		{"alias shared by two models", func(o map[string]any) {
			set(o, md1+".aliases", l("smart"))
		}, rule("spec", "two models must not share an alias")},
		{"duplicate model", func(o map[string]any) {
			set(o, md1+".name", "gpt-4o")
			set(o, md1+".aliases", nil)
		}, "Duplicate value"},
		{"duplicate backend", func(o map[string]any) {
			set(o, "spec.backends.1.name", "openai")
		}, "Duplicate value"},
		{"model names an unknown backend", func(o map[string]any) {
			set(o, md0+".backends", l("openai", "azure"))
		}, rule("spec", "every backend a model names must be in spec.backends")},
		{"model without backends", func(o map[string]any) {
			set(o, md0+".backends", l())
		}, "spec.models[0].backends"},
		{"negative context window", func(o map[string]any) {
			set(o, md0+".contextWindow", int64(-1))
		}, "spec.models[0].contextWindow"},
		{"no models", func(o map[string]any) {
			set(o, "spec.models", l())
		}, "spec.models"},

		// Route-wide fields.
		{"hostname with two wildcards", func(o map[string]any) {
			set(o, "spec.hostnames", l("*.*.example.com"))
		}, "spec.hostnames[0]"},
		{"hostname wildcard inside a label", func(o map[string]any) {
			set(o, "spec.hostnames", l("api*.example.com"))
		}, "spec.hostnames[0]"},
		{"path prefix without a slash", func(o map[string]any) {
			set(o, "spec.pathPrefix", "v1")
		}, "spec.pathPrefix"},
		{"zero body limit", func(o map[string]any) {
			set(o, "spec.maxBodyBytes", int64(0))
		}, "spec.maxBodyBytes"},
		{"all namespaces and a name", func(o map[string]any) {
			set(o, "spec.allowedNamespaces", l("*", "team-a"))
		}, rule("spec.allowedNamespaces", `"*" allows every namespace`)},
		{"all namespaces", func(o map[string]any) {
			set(o, "spec.allowedNamespaces", l("*"))
		}, ""},
		{"namespace not a DNS label", func(o map[string]any) {
			set(o, "spec.allowedNamespaces", l("Team_A"))
		}, "spec.allowedNamespaces[0]"},
	}
}

func TestAIRouteDefaults(t *testing.T) {
	c := loadCRD(t, "airoutes")
	obj := loadObjects(t, routeExample)[0]
	set(obj, "spec.pathPrefix", nil)
	set(obj, "spec.requireVirtualKey", nil)
	if errs := c.admit(obj); len(errs) > 0 {
		t.Fatal(errs)
	}
	spec := obj["spec"].(map[string]any)
	if spec["pathPrefix"] != "/" || spec["requireVirtualKey"] != true {
		t.Errorf("defaults: pathPrefix %v, requireVirtualKey %v; want \"/\" and true (a route is closed unless it says otherwise)", spec["pathPrefix"], spec["requireVirtualKey"])
	}
	ext := spec["backends"].([]any)[0].(map[string]any)["endpoint"].(map[string]any)["external"].(map[string]any)
	if ext["port"] != int64(443) {
		t.Errorf("external port defaults to %v, want 443", ext["port"])
	}
}

func TestVirtualKeyAdmission(t *testing.T) {
	runAdmitCases(t, loadCRD(t, "virtualkeys"), keyExample, 0, virtualKeyCases())
}

func virtualKeyCases() []admitCase {
	return []admitCase{
		{"example", nil, ""},
		{"expiry in the past is admitted (CEL has no clock; status says Expired)", func(o map[string]any) {
			set(o, "spec.expiresAt", "2001-01-01T00:00:00Z")
		}, ""},
		{"fractional cents", func(o map[string]any) {
			set(o, "spec.maxBudget", "0.000125")
			set(o, "spec.softBudget", nil)
		}, ""},
		{"negative budget", func(o map[string]any) {
			set(o, "spec.maxBudget", "-5")
		}, "spec.maxBudget"},
		{"budget with an exponent", func(o map[string]any) {
			set(o, "spec.maxBudget", "1e3")
		}, "spec.maxBudget"},
		{"budget with a quantity suffix", func(o map[string]any) {
			set(o, "spec.maxBudget", "500m")
		}, "spec.maxBudget"},
		{"budget as a YAML number", func(o map[string]any) {
			set(o, "spec.maxBudget", int64(250))
		}, "spec.maxBudget"},
		{"model soft budget above its max", func(o map[string]any) {
			set(o, "spec.modelLimits.0.softBudget", "101")
		}, rule("spec.modelLimits[0]", "softBudget must not exceed maxBudget")},
		{"negative model budget", func(o map[string]any) {
			set(o, "spec.modelLimits.0.maxBudget", "-1")
		}, "spec.modelLimits[0].maxBudget"},
		{"soft budget above max", func(o map[string]any) {
			set(o, "spec.softBudget", "300")
		}, rule("spec", "softBudget must not exceed maxBudget")},
		{"period without a budget", func(o map[string]any) {
			set(o, "spec.maxBudget", nil)
			set(o, "spec.softBudget", nil)
		}, rule("spec", "budgetDuration needs maxBudget or softBudget")},
		{"period as a Go duration", func(o map[string]any) {
			set(o, "spec.budgetDuration", "24h")
		}, `Unsupported value: "24h"`},
		{"negative rpm", func(o map[string]any) {
			set(o, "spec.rpmLimit", int64(-1))
		}, "spec.rpmLimit"},
		{"negative parallel", func(o map[string]any) {
			set(o, "spec.maxParallelRequests", int64(-1))
		}, "spec.maxParallelRequests"},
		{"duplicate model limit", func(o map[string]any) {
			set(o, "spec.modelLimits", l(m("model", "gpt-4o", "rpmLimit", int64(1)), m("model", "gpt-4o", "rpmLimit", int64(2))))
		}, "Duplicate value"},
		{"wildcard inside a model", func(o map[string]any) {
			set(o, "spec.models", l("gpt-*-mini"))
		}, "spec.models[0]"},
		{"prefix wildcard model", func(o map[string]any) {
			set(o, "spec.models", l("openai/*", "*"))
		}, ""},
		{"alias equals a model", func(o map[string]any) {
			set(o, "spec.aliases", m("gpt-4o", "llama-3.1-8b"))
		}, rule("spec", "an alias must not equal one of the key's models")},
		{"wildcard alias", func(o map[string]any) {
			set(o, "spec.aliases", m("gpt*", "gpt-4o"))
		}, rule("spec.aliases", "aliases and their targets must be non-empty and aliases cannot contain '*'")},
		{"no routes", func(o map[string]any) {
			set(o, "spec.routes", l())
		}, "spec.routes"},
		{"route namespace malformed", func(o map[string]any) {
			set(o, "spec.routes.0.namespace", "AI Platform")
		}, "spec.routes[0].namespace"},
		{"expiry not a time", func(o map[string]any) {
			set(o, "spec.expiresAt", "next week")
		}, "spec.expiresAt"},
		{"grace period not a duration", func(o map[string]any) {
			set(o, "spec.rotation.gracePeriod", "1 day")
		}, "spec.rotation.gracePeriod"},
		{"grace period too long", func(o map[string]any) {
			set(o, "spec.rotation.gracePeriod", "1000h")
		}, rule("spec.rotation.gracePeriod", "gracePeriod must be at most 720h")},
	}
}

func TestVirtualKeyDefaults(t *testing.T) {
	c := loadCRD(t, "virtualkeys")
	obj := loadObjects(t, keyExample)[0]
	set(obj, "spec.rotation", map[string]any{})
	if errs := c.admit(obj); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := obj["spec"].(map[string]any)["rotation"].(map[string]any)["gracePeriod"]; got != "1h" {
		t.Errorf("rotation.gracePeriod defaults to %v, want 1h", got)
	}
}

func TestBudgetAdmission(t *testing.T) {
	c := loadCRD(t, "budgets")
	t.Run("global example", func(t *testing.T) {
		if errs := c.admit(loadObjects(t, keyExample)[2]); len(errs) > 0 {
			t.Fatal(errs)
		}
	})
	runAdmitCases(t, c, keyExample, 1, budgetCases())
}

func budgetCases() []admitCase {
	return []admitCase{
		{"team example", nil, ""},
		{"blocked team", func(o map[string]any) { set(o, "spec.blocked", true) }, ""},
		{"unknown kind", func(o map[string]any) { set(o, "spec.subject.kind", "Project") }, `Unsupported value: "Project"`},
		{"team without a name", func(o map[string]any) { set(o, "spec.subject.name", nil) }, rule("spec", "subject.name is required, except for kind Global")},
		{"global with a name", func(o map[string]any) {
			set(o, "spec.subject", m("kind", "Global", "name", "all"))
			set(o, "spec.organization", nil)
			set(o, "spec.models", nil)
		}, rule("spec", "subject.name is required, except for kind Global")},
		{"organization of a user", func(o map[string]any) { set(o, "spec.subject.kind", "User") }, rule("spec", "organization places a team")},
		{"models of an organization", func(o map[string]any) {
			set(o, "spec.subject.kind", "Organization")
			set(o, "spec.organization", nil)
		}, rule("spec", "models restrict a user's or a team's keys")},
		{"blocked user", func(o map[string]any) {
			set(o, "spec.subject.kind", "User")
			set(o, "spec.organization", nil)
			set(o, "spec.blocked", true)
		}, rule("spec", "only a team can be blocked")},
		{"negative team budget", func(o map[string]any) { set(o, "spec.maxBudget", "-1") }, "spec.maxBudget"},
	}
}
