package translate

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/runtime"
)

// route is an AIRoute document; spec is indented under "spec:".
func route(ns, name, created, spec string) string {
	return "apiVersion: weir.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: " + name + ", namespace: " + ns +
		", generation: 2, creationTimestamp: \"" + created + "\"}\nspec:\n" + spec + "\n---\n"
}

func key(ns, name, spec string) string {
	return "apiVersion: weir.dev/v1alpha1\nkind: VirtualKey\nmetadata: {name: " + name + ", namespace: " + ns +
		", uid: 0f6d6a3e-" + name + ", generation: 1, creationTimestamp: \"2026-01-01T00:00:00Z\"}\nspec:\n" + spec + "\n---\n"
}

func budget(name, created, spec string) string {
	return "apiVersion: weir.dev/v1alpha1\nkind: Budget\nmetadata: {name: " + name + ", generation: 1, creationTimestamp: \"" + created + "\"}\nspec:\n" + spec + "\n---\n"
}

const openaiSecret = `apiVersion: v1
kind: Secret
metadata: {name: openai, namespace: ns1}
stringData: {api-key: "sk-test\n", org: org-1}
---
`

// simple is a route spec with one model on one OpenAI backend.
func simple(model string) string {
	return `  models: [{name: "` + model + `", backends: [b]}]
  backends:
  - name: b
    provider: openai
    endpoint: {external: {hostname: api.openai.com}, basePath: /v1}
    credential: {secretKeyRef: {name: openai, key: api-key}}`
}

type check func(t *testing.T, out Output)

func TestTranslateRules(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check check
	}{
		{"backend names derive from namespace, route and backend",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")),
			func(t *testing.T, out Output) {
				b := backend(t, out, backendName("ns1", "chat", "b"))
				if b.BaseURL != "https://api.openai.com/v1" {
					t.Errorf("base_url %q", b.BaseURL)
				}
				m := model(t, out, "gpt-4o")
				if !slices.Equal(m.Backends, []string{b.Name}) {
					t.Errorf("model backends %q", m.Backends)
				}
				wantCond(t, out, "AIRoute", "ns1", "chat", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
				wantCond(t, out, "AIRoute", "ns1", "chat", weirv1a1.ConditionResolvedRefs, true, weirv1a1.ReasonResolvedRefs, "")
				if g := out.Status[Object{"AIRoute", "ns1", "chat"}].ObservedGeneration; g != 2 {
					t.Errorf("observedGeneration %d", g)
				}
			}},
		{"service endpoint becomes its cluster DNS name",
			"apiVersion: v1\nkind: Service\nmetadata: {name: vllm, namespace: ns1}\nspec: {ports: [{port: 8000}]}\n---\n" +
				route("ns1", "local", "2026-01-01T00:00:00Z", `  models: [{name: llama, backends: [v]}]
  backends:
  - {name: v, provider: openai, endpoint: {service: {name: vllm, port: 8000}, basePath: /v1}}`),
			func(t *testing.T, out Output) {
				if b := backend(t, out, backendName("ns1", "local", "v")); b.BaseURL != "http://vllm.ns1.svc.cluster.local:8000/v1" {
					t.Errorf("base_url %q", b.BaseURL)
				}
			}},
		{"service endpoint with tls is https",
			"apiVersion: v1\nkind: Service\nmetadata: {name: vllm, namespace: ns1}\nspec: {ports: [{port: 8443}]}\n---\n" +
				route("ns1", "local", "2026-01-01T00:00:00Z", `  models: [{name: llama, backends: [v]}]
  backends:
  - {name: v, provider: openai, endpoint: {service: {name: vllm, port: 8443}, tls: {serverName: vllm.internal}}}`),
			func(t *testing.T, out Output) {
				b := backend(t, out, backendName("ns1", "local", "v"))
				if b.BaseURL != "https://vllm.ns1.svc.cluster.local:8443" || b.TLS == nil || b.TLS.ServerName != "vllm.internal" {
					t.Errorf("base_url %q tls %+v", b.BaseURL, b.TLS)
				}
			}},
		{"missing service drops the backend and the models only it serves",
			openaiSecret + route("ns1", "mixed", "2026-01-01T00:00:00Z", `  models:
  - {name: gpt-4o, backends: [b, v]}
  - {name: llama, backends: [v]}
  backends:
  - {name: b, provider: openai, endpoint: {external: {hostname: api.openai.com}}, credential: {secretKeyRef: {name: openai, key: api-key}}}
  - {name: v, provider: openai, endpoint: {service: {name: vllm, port: 8000}}}`),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "mixed", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonServiceNotFound, "Service ns1/vllm", "backend v", "llama")
				wantCond(t, out, "AIRoute", "ns1", "mixed", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
				if m := model(t, out, "gpt-4o"); len(m.Backends) != 1 {
					t.Errorf("gpt-4o backends %q", m.Backends)
				}
				noModelNamed(t, out, "llama")
				if len(out.Config.Backends) != 1 {
					t.Errorf("backends %d", len(out.Config.Backends))
				}
			}},
		{"missing service port",
			"apiVersion: v1\nkind: Service\nmetadata: {name: vllm, namespace: ns1}\nspec: {ports: [{port: 80}]}\n---\n" +
				route("ns1", "local", "2026-01-01T00:00:00Z", `  models: [{name: llama, backends: [v]}]
  backends:
  - {name: v, provider: openai, endpoint: {service: {name: vllm, port: 8000}}}`),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "local", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonServiceNotFound, "port 8000")
				noModelNamed(t, out, "llama")
			}},
		{"external endpoint keeps a port that is not 443",
			route("ns1", "ext", "2026-01-01T00:00:00Z", `  models: [{name: m, backends: [x]}]
  backends:
  - {name: x, provider: anthropic, endpoint: {external: {hostname: llm.example.com, port: 8443}}}`),
			func(t *testing.T, out Output) {
				if b := backend(t, out, backendName("ns1", "ext", "x")); b.BaseURL != "https://llm.example.com:8443" || b.Provider != "anthropic" {
					t.Errorf("base_url %q provider %q", b.BaseURL, b.Provider)
				}
			}},
		{"preset fills provider and endpoint",
			route("ns1", "p", "2026-01-01T00:00:00Z", `  models: [{name: llama-groq, backends: [g]}]
  backends:
  - {name: g, preset: groq}`),
			func(t *testing.T, out Output) {
				b := backend(t, out, backendName("ns1", "p", "g"))
				// Preset is applied here, not shipped: config.Parse on a
				// replica would otherwise give a key-less preset backend the
				// preset's environment variable as its credential, unset
				// there, and refuse the whole config.
				if b.BaseURL != "https://api.groq.com/openai/v1" || b.Provider != "openai" || b.Preset != "" {
					t.Errorf("backend %+v", b)
				}
			}},
		{"secretKeyRef and header secrets are read, trimmed",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")+`
    headers:
    - {name: openai-organization, secretKeyRef: {name: openai, key: org}}
    - {name: x-team, value: search}`),
			func(t *testing.T, out Output) {
				b := backend(t, out, backendName("ns1", "chat", "b"))
				if b.Credential == nil || b.Credential.Value.Reveal() != "sk-test" || b.Credential.Key.Reveal() != "sk-test" {
					t.Errorf("credential %#v", b.Credential)
				}
				if b.Headers["openai-organization"].Reveal() != "org-1" || b.Headers["x-team"].Reveal() != "search" {
					t.Errorf("headers %d", len(b.Headers))
				}
			}},
		{"missing secret or key drops the backend",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: openai, namespace: ns1}\nstringData: {other: x}\n---\n" +
				route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				route("ns2", "chat", "2026-01-01T00:00:00Z", simple("gpt-5")),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "chat", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonSecretNotFound, `key "api-key"`, "Secret ns1/openai", "backend b", "gpt-4o")
				wantCond(t, out, "AIRoute", "ns2", "chat", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonSecretNotFound, "Secret ns2/openai")
				if len(out.Config.Backends)+len(out.Config.Models) != 0 {
					t.Errorf("config has %d backends, %d models", len(out.Config.Backends), len(out.Config.Models))
				}
			}},
		{"vertex service-account key",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: gcp, namespace: ns1}\ndata: {sa.json: " + base64.StdEncoding.EncodeToString(serviceAccountKey(t)) + "}\n---\n" +
				route("ns1", "v", "2026-01-01T00:00:00Z", `  models: [{name: gemini, backends: [g]}]
  backends:
  - name: g
    provider: vertex
    options: {project: p1, location: us-central1}
    endpoint: {external: {hostname: us-central1-aiplatform.googleapis.com}}
    credential: {serviceAccountKeyRef: {name: gcp, key: sa.json}}`),
			func(t *testing.T, out Output) {
				b := backend(t, out, backendName("ns1", "v", "g"))
				if b.Credential.Value.Reveal() != string(serviceAccountKey(t)) || b.Options["project"] != "p1" {
					t.Errorf("backend %+v", b)
				}
			}},
		{"bedrock static keys and region",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: aws, namespace: ns1}\nstringData: {id: AKIA1, secret: s3cr3t, token: tok}\n---\n" +
				route("ns1", "br", "2026-01-01T00:00:00Z", `  models: [{name: claude-br, backends: [a]}]
  backends:
  - name: a
    provider: bedrock
    aws: {region: eu-west-1}
    endpoint: {external: {hostname: bedrock-runtime.eu-west-1.amazonaws.com}}
    credential: {aws: {accessKeyIDRef: {name: aws, key: id}, secretAccessKeyRef: {name: aws, key: secret}, sessionTokenRef: {name: aws, key: token}}}`),
			func(t *testing.T, out Output) {
				b := backend(t, out, backendName("ns1", "br", "a"))
				if a := b.AWS; a == nil || a.Region != "eu-west-1" || a.AccessKeyID.Reveal() != "AKIA1" || a.SecretAccessKey.Reveal() != "s3cr3t" || a.SessionToken.Reveal() != "tok" || b.Credential != nil {
					t.Errorf("aws %+v credential %v", b.AWS, b.Credential)
				}
			}},
		{"a CA from a ConfigMap is not supported yet: the backend is dropped and says so",
			route("ns1", "private", "2026-01-01T00:00:00Z", `  models: [{name: m, backends: [x]}]
  backends:
  - {name: x, provider: openai, endpoint: {external: {hostname: llm.corp}, tls: {caCertificateRef: {name: ca, key: ca.crt}}}}`),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "private", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonUnsupported, "not supported yet", "caCertificateRef", "backend x")
				noModelNamed(t, out, "m")
			}},
		{"the newer of two routes naming the same model is refused whole",
			openaiSecret + "apiVersion: v1\nkind: Secret\nmetadata: {name: openai, namespace: ns2}\nstringData: {api-key: k}\n---\n" +
				route("ns2", "new", "2026-02-01T00:00:00Z", simple("gpt-4o")+"\n  hostnames: [b.example.com]") +
				route("ns1", "old", "2026-01-01T00:00:00Z", simple("gpt-4o")+"\n  hostnames: [a.example.com]"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "old", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
				wantCond(t, out, "AIRoute", "ns2", "new", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, `"gpt-4o"`, "AIRoute ns1/old")
				if m := model(t, out, "gpt-4o"); m.Backends[0] != backendName("ns1", "old", "b") {
					t.Errorf("gpt-4o served by %q", m.Backends)
				}
				if len(out.Config.Backends) != 1 || !slices.Equal(out.Config.Listener.Hostnames, []string{"a.example.com"}) {
					t.Errorf("backends %d hostnames %q", len(out.Config.Backends), out.Config.Listener.Hostnames)
				}
			}},
		{"same age: namespace/name decides; an alias conflicts with a name",
			openaiSecret + route("ns1", "b", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				route("ns1", "a", "2026-01-01T00:00:00Z", `  models: [{name: gpt, aliases: [gpt-4o], backends: [b]}]
  backends:
  - {name: b, provider: openai, endpoint: {external: {hostname: api.openai.com}}, credential: {secretKeyRef: {name: openai, key: api-key}}}`),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "a", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
				wantCond(t, out, "AIRoute", "ns1", "b", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, "AIRoute ns1/a")
			}},
		{"a pattern that would take another route's names conflicts",
			openaiSecret + route("ns1", "exact", "2026-01-01T00:00:00Z", simple("openai/gpt-4o-ft")) +
				route("ns1", "wide", "2026-02-01T00:00:00Z", simple("openai/*")),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "wide", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, `"openai/*"`, `"openai/gpt-4o-ft"`, "AIRoute ns1/exact")
			}},
		{"hostnames are the union of accepted routes'",
			openaiSecret + route("ns1", "a", "2026-01-01T00:00:00Z", simple("m1")+"\n  hostnames: [b.example.com, a.example.com]") +
				route("ns1", "b", "2026-01-01T00:00:00Z", simple("m2")+"\n  hostnames: [a.example.com, \"*.ai.example.com\"]"),
			func(t *testing.T, out Output) {
				if got := out.Config.Listener.Hostnames; !slices.Equal(got, []string{"*.ai.example.com", "a.example.com", "b.example.com"}) {
					t.Errorf("hostnames %q", got)
				}
			}},
		{"a route without hostnames serves every host",
			openaiSecret + route("ns1", "a", "2026-01-01T00:00:00Z", simple("m1")+"\n  hostnames: [a.example.com]") +
				route("ns1", "b", "2026-01-01T00:00:00Z", simple("m2")),
			func(t *testing.T, out Output) {
				if got := out.Config.Listener.Hostnames; len(got) != 0 {
					t.Errorf("hostnames %q", got)
				}
			}},
		{"a path prefix other than / is refused",
			openaiSecret + route("ns1", "a", "2026-01-01T00:00:00Z", simple("m1")+"\n  pathPrefix: /team-a"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "a", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "pathPrefix", "cannot serve")
				noModelNamed(t, out, "m1")
			}},
		{"a pattern keys cannot be granted is refused on a route that requires keys",
			openaiSecret + route("ns1", "a", "2026-01-01T00:00:00Z", simple("gpt-*")) +
				route("ns1", "open", "2026-01-01T00:00:00Z", simple("claude-*")+"\n  requireVirtualKey: false"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "AIRoute", "ns1", "a", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, `"gpt-*"`, "/*")
				wantCond(t, out, "AIRoute", "ns1", "open", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
			}},
		{"one route requiring keys puts the whole gateway in keys mode; the largest body limit wins",
			openaiSecret + route("ns1", "a", "2026-01-01T00:00:00Z", simple("m1")+"\n  requireVirtualKey: false\n  maxBodyBytes: 33554432") +
				route("ns1", "b", "2026-01-01T00:00:00Z", simple("m2")),
			func(t *testing.T, out Output) {
				if out.Config.Auth.Mode != "keys" || out.Config.Listener.MaxBodyBytes != 32<<20 {
					t.Errorf("mode %q max body %d", out.Config.Auth.Mode, out.Config.Listener.MaxBodyBytes)
				}
			}},
		{"only open routes: open mode; unset body limit counts as the default",
			openaiSecret + route("ns1", "a", "2026-01-01T00:00:00Z", simple("m1")+"\n  requireVirtualKey: false\n  maxBodyBytes: 1024") +
				route("ns1", "b", "2026-01-01T00:00:00Z", simple("m2")+"\n  requireVirtualKey: false"),
			func(t *testing.T, out Output) {
				if out.Config.Auth.Mode != "open" || out.Config.Listener.MaxBodyBytes != config.DefaultMaxBodyBytes {
					t.Errorf("mode %q max body %d", out.Config.Auth.Mode, out.Config.Listener.MaxBodyBytes)
				}
			}},
		{"a key carries its fields, its UID as limits id and its namespace/name as alias",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				key("ns1", "k1", `  routes: [{name: chat}]
  maxBudget: "12.50"
  softBudget: "10"
  budgetDuration: 30d
  rpmLimit: 60
  tpmLimit: 1000
  maxParallelRequests: 3
  modelLimits: [{model: gpt-4o, maxBudget: "0.000125", rpmLimit: 5}]
  aliases: {smart: gpt-4o}
  user: alice
  team: search
  organization: acme
  metadata: {cc: "4711"}
  tags: [prod]
  expiresAt: "2027-01-01T00:00:00Z"`),
			func(t *testing.T, out Output) {
				k := keyConfig(t, out, testHash("ns1/k1"))
				want := config.LimitsConfig{MaxBudget: 12.5, SoftBudget: 10, BudgetDuration: "30d", RPM: 60, TPM: 1000, MaxParallel: 3}
				exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
				if k.LimitsID != "0f6d6a3e-k1" || k.Alias != "ns1/k1" || k.LimitsConfig != want || k.UserID != "alice" || k.TeamID != "search" || k.OrgID != "acme" ||
					k.Metadata["cc"] != "4711" || !slices.Equal(k.Tags, []string{"prod"}) || k.Aliases["smart"] != "gpt-4o" || k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) ||
					k.ModelLimits["gpt-4o"] != (config.LimitsConfig{MaxBudget: 0.000125, RPM: 5}) || !slices.Equal(k.Models, []string{"gpt-4o"}) {
					t.Errorf("key %+v", k)
				}
				wantCond(t, out, "VirtualKey", "ns1", "k1", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
				wantCond(t, out, "VirtualKey", "ns1", "k1", weirv1a1.ConditionResolvedRefs, true, weirv1a1.ReasonResolvedRefs, "")
				// Ready is the controller's summary unless the key itself
				// says why it cannot be.
				if c := meta.FindStatusCondition(out.Status[Object{"VirtualKey", "ns1", "k1"}].Conditions, weirv1a1.ConditionReady); c != nil {
					t.Errorf("Ready set: %+v", c)
				}
			}},
		{"rotation: unexpired previous hashes share the limits id and expire no later than the key",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				key("ns1", "k1", "  routes: [{name: chat}]\n  expiresAt: \"2026-12-06T13:00:00Z\"") + `apiVersion: test.weir.dev/v1
kind: TestSettings
issued:
  ns1/k1:
    hash: ` + testHash("new") + `
    previous:
    - {hash: ` + testHash("old1") + `, expiresAt: "2026-12-06T12:30:00Z"}
    - {hash: ` + testHash("old2") + `, expiresAt: "2026-12-07T12:00:00Z"}
    - {hash: ` + testHash("gone") + `, expiresAt: "2026-12-06T12:00:00Z"}
`,
			func(t *testing.T, out Output) {
				if n := len(out.Config.Auth.Keys); n != 3 {
					t.Fatalf("%d keys, want 3", n)
				}
				cur, o1, o2 := keyConfig(t, out, testHash("new")), keyConfig(t, out, testHash("old1")), keyConfig(t, out, testHash("old2"))
				for _, k := range []*config.KeyConfig{cur, o1, o2} {
					if k.LimitsID != "0f6d6a3e-k1" || !slices.Equal(k.Models, []string{"gpt-4o"}) {
						t.Errorf("%s: limits id %q models %q", k.Hash[:6], k.LimitsID, k.Models)
					}
				}
				if !o1.ExpiresAt.Equal(time.Date(2026, 12, 6, 12, 30, 0, 0, time.UTC)) || !o2.ExpiresAt.Equal(time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)) {
					t.Errorf("previous expiries %v %v", o1.ExpiresAt, o2.ExpiresAt)
				}
			}},
		{"a key not issued yet is not shipped",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				key("ns1", "k1", "  routes: [{name: chat}]") + "kind: TestSettings\npending: [ns1/k1]\n",
			func(t *testing.T, out Output) {
				if n := len(out.Config.Auth.Keys); n != 0 {
					t.Errorf("%d keys", n)
				}
				wantCond(t, out, "VirtualKey", "ns1", "k1", weirv1a1.ConditionReady, false, weirv1a1.ReasonPending, "not issued yet")
			}},
		{"cross-namespace: allowed by name or *, refused otherwise, missing reported",
			openaiSecret + route("ns1", "named", "2026-01-01T00:00:00Z", simple("m1")+"\n  allowedNamespaces: [team-a]") +
				route("ns1", "all", "2026-01-01T00:00:00Z", simple("m2")+"\n  allowedNamespaces: [\"*\"]") +
				route("ns1", "own", "2026-01-01T00:00:00Z", simple("m3")) +
				key("team-a", "k1", "  routes: [{name: named, namespace: ns1}, {name: all, namespace: ns1}]") +
				key("team-b", "k2", "  routes: [{name: named, namespace: ns1}, {name: all, namespace: ns1}, {name: own, namespace: ns1}, {name: nope, namespace: ns1}]"),
			func(t *testing.T, out Output) {
				if k := keyConfig(t, out, testHash("team-a/k1")); !slices.Equal(k.Models, []string{"m1", "m2"}) {
					t.Errorf("k1 models %q", k.Models)
				}
				wantCond(t, out, "VirtualKey", "team-a", "k1", weirv1a1.ConditionResolvedRefs, true, weirv1a1.ReasonResolvedRefs, "")
				if k := keyConfig(t, out, testHash("team-b/k2")); !slices.Equal(k.Models, []string{"m2"}) {
					t.Errorf("k2 models %q", k.Models)
				}
				wantCond(t, out, "VirtualKey", "team-b", "k2", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonNotAllowedByRoute, "AIRoute ns1/named", "AIRoute ns1/own", "AIRoute ns1/nope")
			}},
		{"a missing route is reported and the key gets no model",
			key("ns1", "k1", "  routes: [{name: nope}]"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "VirtualKey", "ns1", "k1", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonRouteNotFound, "AIRoute ns1/nope")
				if k := keyConfig(t, out, testHash("ns1/k1")); !slices.Equal(k.Models, []string{noModel}) {
					t.Errorf("models %q", k.Models)
				}
			}},
		{"a refused route gives no model and is reported",
			openaiSecret + route("ns1", "bad", "2026-01-01T00:00:00Z", simple("m1")+"\n  pathPrefix: /x") +
				key("ns1", "k1", "  routes: [{name: bad}]"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "VirtualKey", "ns1", "k1", weirv1a1.ConditionResolvedRefs, false, weirv1a1.ReasonRouteNotFound, "AIRoute ns1/bad", "not accepted")
			}},
		{"key models are intersected with its routes' names",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", `  models:
  - {name: gpt-4o, aliases: [smart], backends: [b]}
  - {name: "openai/*", backends: [b]}
  backends:
  - {name: b, provider: openai, endpoint: {external: {hostname: api.openai.com}}, credential: {secretKeyRef: {name: openai, key: api-key}}}`) +
				route("ns2", "other", "2026-01-01T00:00:00Z", `  models: [{name: claude, backends: [a]}]
  backends: [{name: a, provider: anthropic, endpoint: {external: {hostname: api.anthropic.com}}}]`) +
				key("ns1", "all", "  routes: [{name: chat}]") +
				key("ns1", "some", "  routes: [{name: chat}]\n  models: [smart, claude, openai/o1]") +
				key("ns1", "star", "  routes: [{name: chat}]\n  models: [\"*\"]"),
			func(t *testing.T, out Output) {
				for name, want := range map[string][]string{
					"all": {"gpt-4o", "openai/*", "smart"}, "some": {"openai/o1", "smart"}, "star": {"gpt-4o", "openai/*", "smart"},
				} {
					if k := keyConfig(t, out, testHash("ns1/"+name)); !slices.Equal(k.Models, want) {
						t.Errorf("%s: models %q, want %q", name, k.Models, want)
					}
				}
			}},
		{"expired and blocked keys are shipped and not ready",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				key("ns1", "old", "  routes: [{name: chat}]\n  expiresAt: \"2026-12-06T12:00:00Z\"") +
				key("ns1", "stop", "  routes: [{name: chat}]\n  blocked: true") +
				key("ns1", "member", "  routes: [{name: chat}]\n  team: frozen") +
				budget("frozen", "2026-01-01T00:00:00Z", "  subject: {kind: Team, name: frozen}\n  blocked: true"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "VirtualKey", "ns1", "old", weirv1a1.ConditionReady, false, weirv1a1.ReasonExpired, "2026-12-06T12:00:00Z")
				wantCond(t, out, "VirtualKey", "ns1", "stop", weirv1a1.ConditionReady, false, weirv1a1.ReasonBlocked, "")
				wantCond(t, out, "VirtualKey", "ns1", "member", weirv1a1.ConditionReady, false, weirv1a1.ReasonBlocked, "team frozen", "Budget frozen")
				if k := keyConfig(t, out, testHash("ns1/stop")); !k.Blocked {
					t.Error("blocked key not blocked")
				}
				keyConfig(t, out, testHash("ns1/old"))
			}},
		{"Ready's reason is the data plane's first refusal: blocked, expired, then the team",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				key("ns1", "both", "  routes: [{name: chat}]\n  blocked: true\n  expiresAt: \"2026-01-01T00:00:00Z\"\n  team: frozen") +
				key("ns1", "late", "  routes: [{name: chat}]\n  expiresAt: \"2026-01-01T00:00:00Z\"\n  team: frozen") +
				budget("frozen", "2026-01-01T00:00:00Z", "  subject: {kind: Team, name: frozen}\n  blocked: true"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "VirtualKey", "ns1", "both", weirv1a1.ConditionReady, false, weirv1a1.ReasonBlocked, "spec.blocked")
				wantCond(t, out, "VirtualKey", "ns1", "late", weirv1a1.ConditionReady, false, weirv1a1.ReasonExpired, "")
			}},
		{"a previous hash repeated, or equal to the current one, is shipped once",
			key("ns1", "k", "  routes: [{name: chat}]") +
				"kind: TestSettings\nissued:\n  ns1/k:\n    hash: " + testHash("a") + "\n    previous:\n    - {hash: " + testHash("a") + ", expiresAt: \"2026-12-07T00:00:00Z\"}\n" +
				"    - {hash: " + testHash("b") + ", expiresAt: \"2026-12-07T00:00:00Z\"}\n    - {hash: " + testHash("b") + ", expiresAt: \"2026-12-08T00:00:00Z\"}\n",
			func(t *testing.T, out Output) {
				if n := len(out.Config.Auth.Keys); n != 2 {
					t.Errorf("%d keys, want 2", n)
				}
				wantCond(t, out, "VirtualKey", "ns1", "k", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
			}},
		{"two keys with one hash: the newer is refused",
			key("ns1", "a", "  routes: [{name: chat}]") + key("ns1", "b", "  routes: [{name: chat}]") +
				"kind: TestSettings\nissued:\n  ns1/a: {hash: " + testHash("same") + "}\n  ns1/b: {hash: " + testHash("same") + "}\n",
			func(t *testing.T, out Output) {
				wantCond(t, out, "VirtualKey", "ns1", "b", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, "VirtualKey ns1/a")
				if k := keyConfig(t, out, testHash("same")); k.Alias != "ns1/a" {
					t.Errorf("alias %q", k.Alias)
				}
			}},
		{"budgets become users, teams, organizations and global",
			budget("u", "2026-01-01T00:00:00Z", "  subject: {kind: User, name: alice}\n  rpmLimit: 10\n  models: [gpt-4o]") +
				budget("t", "2026-01-01T00:00:00Z", "  subject: {kind: Team, name: search}\n  organization: acme\n  maxBudget: \"100\"\n  budgetDuration: 1mo\n  modelLimits: [{model: gpt-4o, tpmLimit: 5}]") +
				budget("o", "2026-01-01T00:00:00Z", "  subject: {kind: Organization, name: acme}\n  softBudget: \"5\"") +
				budget("g", "2026-01-01T00:00:00Z", "  subject: {kind: Global}\n  maxBudget: \"20000\""),
			func(t *testing.T, out Output) {
				a := out.Config.Auth
				if len(a.Users) != 1 || a.Users[0].ID != "alice" || a.Users[0].RPM != 10 || !slices.Equal(a.Users[0].Models, []string{"gpt-4o"}) {
					t.Errorf("users %+v", a.Users)
				}
				if len(a.Teams) != 1 || a.Teams[0].OrgID != "acme" || a.Teams[0].MaxBudget != 100 || a.Teams[0].ModelLimits["gpt-4o"].TPM != 5 {
					t.Errorf("teams %+v", a.Teams)
				}
				if len(a.Orgs) != 1 || a.Orgs[0].SoftBudget != 5 || a.Global == nil || a.Global.MaxBudget != 20000 {
					t.Errorf("orgs %+v global %+v", a.Orgs, a.Global)
				}
				wantCond(t, out, "Budget", "", "g", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
			}},
		{"two budgets for one subject: the newer is refused",
			budget("b2", "2026-02-01T00:00:00Z", "  subject: {kind: Team, name: search}\n  maxBudget: \"2\"") +
				budget("b1", "2026-01-01T00:00:00Z", "  subject: {kind: Team, name: search}\n  maxBudget: \"1\"") +
				budget("g2", "2026-02-01T00:00:00Z", "  subject: {kind: Global}\n  maxBudget: \"2\"") +
				budget("g1", "2026-01-01T00:00:00Z", "  subject: {kind: Global}\n  maxBudget: \"1\""),
			func(t *testing.T, out Output) {
				wantCond(t, out, "Budget", "", "b2", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, "Budget b1", "Team search")
				wantCond(t, out, "Budget", "", "g2", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, "Budget g1")
				if a := out.Config.Auth; len(a.Teams) != 1 || a.Teams[0].MaxBudget != 1 || a.Global.MaxBudget != 1 {
					t.Errorf("teams %+v global %+v", a.Teams, a.Global)
				}
			}},
		{"what CEL should have refused (an object stored before a rule) is refused, not the config",
			openaiSecret + route("ns1", "chat", "2026-01-01T00:00:00Z", simple("gpt-4o")) +
				key("ns1", "bad", "  routes: [{name: chat}]\n  budgetDuration: 2d\n  maxBudget: \"1\"") +
				key("ns1", "good", "  routes: [{name: chat}]\n  rpmLimit: 5") +
				budget("neg", "2026-01-01T00:00:00Z", "  subject: {kind: Team, name: t}\n  rpmLimit: -1") +
				budget("noname", "2026-01-01T00:00:00Z", "  subject: {kind: User}\n  rpmLimit: 1") +
				budget("g", "2026-01-01T00:00:00Z", "  subject: {kind: Global}\n  budgetDuration: 5m\n  maxBudget: \"1\""),
			func(t *testing.T, out Output) {
				wantCond(t, out, "VirtualKey", "ns1", "bad", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "budget_duration")
				wantCond(t, out, "VirtualKey", "ns1", "good", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
				wantCond(t, out, "Budget", "", "neg", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "negative")
				wantCond(t, out, "Budget", "", "noname", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "id")
				wantCond(t, out, "Budget", "", "g", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "budget_duration")
				if a := out.Config.Auth; len(a.Keys) != 1 || a.Keys[0].Alias != "ns1/good" || len(a.Teams)+len(a.Users) != 0 || a.Global != nil {
					t.Errorf("auth %+v", a)
				}
			}},
		{"a global budget with per-model limits is refused",
			budget("g", "2026-01-01T00:00:00Z", "  subject: {kind: Global}\n  modelLimits: [{model: m, rpmLimit: 1}]"),
			func(t *testing.T, out Output) {
				wantCond(t, out, "Budget", "", "g", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "modelLimits")
				if out.Config.Auth.Global != nil {
					t.Error("global shipped")
				}
			}},
	}
	// Bedrock without static keys would ask the EC2 metadata service.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Translate(parseInput(t, []byte(tt.in)))
			compiles(t, out.Config)
			tt.check(t, out)
		})
	}
}

// serviceAccountKey is a Google service-account JSON key the vertex
// provider accepts, with a key made for the test run.
var serviceAccountKey = func() func(t *testing.T) []byte {
	var once sync.Once
	var key []byte
	return func(t *testing.T) []byte {
		once.Do(func() {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			key, err = json.Marshal(map[string]string{
				"type": "service_account", "client_email": "weir@p1.iam.gserviceaccount.com", "private_key_id": "1",
				"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": "https://oauth2.googleapis.com/token",
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		return key
	}
}()

// Backend names that collide (a 40-bit hash makes it unlikely, not
// impossible) refuse the newer route rather than the config.
func TestBackendNameCollision(t *testing.T) {
	in := parseInput(t, []byte(openaiSecret+route("ns1", "new", "2026-02-01T00:00:00Z", simple("m2"))+route("ns1", "old", "2026-01-01T00:00:00Z", simple("m1"))))
	out := translate(in, func(string, string, string) string { return "same" })
	compiles(t, out.Config)
	wantCond(t, out, "AIRoute", "ns1", "old", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
	wantCond(t, out, "AIRoute", "ns1", "new", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict, "backend name same", "AIRoute ns1/old")
}

func backend(t *testing.T, out Output, name string) *config.Backend {
	t.Helper()
	b := out.Config.Backend(name)
	if b == nil {
		var names []string
		for _, b := range out.Config.Backends {
			names = append(names, b.Name)
		}
		t.Fatalf("no backend %q in %q", name, names)
	}
	return b
}

func model(t *testing.T, out Output, name string) *config.Model {
	t.Helper()
	for i := range out.Config.Models {
		if out.Config.Models[i].Name == name {
			return &out.Config.Models[i]
		}
	}
	t.Fatalf("no model %q", name)
	return nil
}

func noModelNamed(t *testing.T, out Output, name string) {
	t.Helper()
	for _, m := range out.Config.Models {
		if m.Name == name {
			t.Errorf("model %q shipped", name)
		}
	}
}

func keyConfig(t *testing.T, out Output, hash string) *config.KeyConfig {
	t.Helper()
	for i := range out.Config.Auth.Keys {
		if out.Config.Auth.Keys[i].Hash == hash {
			return &out.Config.Auth.Keys[i]
		}
	}
	t.Fatalf("no key %s…", hash[:8])
	return nil
}

// wantCond checks one condition; the message must contain each of msg.
func wantCond(t *testing.T, out Output, kind, ns, name, typ string, status bool, reason string, msg ...string) {
	t.Helper()
	st, ok := out.Status[Object{Kind: kind, Namespace: ns, Name: name}]
	if !ok {
		t.Fatalf("no status for %s %s/%s", kind, ns, name)
	}
	for _, c := range st.Conditions {
		if c.Type != typ {
			continue
		}
		want := metav1.ConditionFalse
		if status {
			want = metav1.ConditionTrue
		}
		if c.Status != want || c.Reason != reason {
			t.Errorf("%s %s/%s %s = %s %s (%s), want %s %s", kind, ns, name, typ, c.Status, c.Reason, c.Message, want, reason)
		}
		for _, m := range msg {
			if !strings.Contains(c.Message, m) {
				t.Errorf("%s %s/%s %s message %q lacks %q", kind, ns, name, typ, c.Message, m)
			}
		}
		return
	}
	t.Errorf("%s %s/%s has no %s condition: %+v", kind, ns, name, typ, st.Conditions)
}

// extprocCheck is the data plane's check of one backend: what a replica
// compiling the config would refuse.
func extprocCheck(b *config.Backend) error {
	rt, err := runtime.Compile(&config.Config{Version: config.Version, Backends: []config.Backend{*b}}, nil, nil)
	if err != nil {
		return err
	}
	rt.Release()
	return nil
}

// A backend the data plane's own check refuses (an option its provider
// does not know) makes its route Invalid instead of making every replica
// refuse the config.
func TestCheckBackend(t *testing.T) {
	in := parseInput(t, []byte(openaiSecret+route("ns1", "bad", "2026-01-01T00:00:00Z", `  models: [{name: m1, backends: [b]}]
  backends:
  - {name: b, provider: azure, endpoint: {external: {hostname: x.openai.azure.com}}, options: {bogus: x}}`)+
		route("ns1", "good", "2026-01-01T00:00:00Z", simple("m2"))))
	in.CheckBackend = extprocCheck
	out := Translate(in)
	compiles(t, out.Config)
	wantCond(t, out, "AIRoute", "ns1", "bad", weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, "backend b", "bogus")
	wantCond(t, out, "AIRoute", "ns1", "good", weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "")
}
