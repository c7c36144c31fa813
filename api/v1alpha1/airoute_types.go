package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// AIRoute is what a gateway serves on some hostnames and a path prefix:
// the models clients may name and the backends (upstream model servers)
// each is sent to. It carries everything a model and a backend have in
// Weir's YAML config; the controller renders AIRoutes into that config.
//
// VirtualKeys name the AIRoutes they may use. A key in another namespace
// may use this route only if spec.allowedNamespaces lists its namespace,
// so a tenant cannot spend a route another tenant pays for.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=air,categories=weir
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hostnames`
// +kubebuilder:printcolumn:name="Models",type=string,JSONPath=`.spec.models[*].name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AIRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AIRouteSpec `json:"spec"`
	// +optional
	Status AIRouteStatus `json:"status,omitempty"`
}

// AIRouteSpec is the route's desired state.
//
// Cross-field rules that CEL checks here: every model's backends name a
// backend of this route; no alias equals a model name or another model's
// alias. Names are unique because models and backends are map lists.
//
// +kubebuilder:validation:XValidation:rule="self.models.all(m, m.backends.all(b, self.backends.exists(x, x.name == b)))",message="every backend a model names must be in spec.backends"
// +kubebuilder:validation:XValidation:rule="self.models.all(m, !has(m.aliases) || m.aliases.all(a, !self.models.exists(o, o.name == a)))",message="an alias must not equal a model name"
// +kubebuilder:validation:XValidation:rule="self.models.all(m, !has(m.aliases) || self.models.all(o, o.name == m.name || !has(o.aliases) || !m.aliases.exists(a, a in o.aliases)))",message="two models must not share an alias"
type AIRouteSpec struct {
	// Hostnames are the request hosts the route serves. A leading "*."
	// matches any one or more labels ("*.example.com"). Empty means every
	// host.
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Hostnames []Hostname `json:"hostnames,omitempty"`
	// PathPrefix is the path under which the OpenAI-style API is served,
	// for example "/" (then /v1/chat/completions) or "/team-a".
	// +kubebuilder:default="/"
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~/-]*$`
	// +kubebuilder:validation:MaxLength=256
	// +optional
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Models map client-visible model names to backends.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Models []Model `json:"models"`
	// Backends are the upstream model servers the models use.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Backends []Backend `json:"backends"`
	// MaxBodyBytes caps the client request body (413 above it). Unset
	// means 8 MiB.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1073741824
	// +optional
	MaxBodyBytes *int64 `json:"maxBodyBytes,omitempty"`
	// RequireVirtualKey refuses requests without a valid VirtualKey (401).
	// Set it to false only for a route meant to be open, such as a
	// development cluster's.
	// +kubebuilder:default=true
	// +optional
	RequireVirtualKey *bool `json:"requireVirtualKey,omitempty"`
	// AllowedNamespaces are the namespaces, besides the route's own, whose
	// VirtualKeys may use this route; ["*"] allows every namespace. Empty
	// means only the route's namespace.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="!('*' in self) || size(self) == 1",message="\"*\" allows every namespace and cannot be combined with names"
	// +optional
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`
}

// Hostname is a DNS name, optionally with a leading "*." wildcard label.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
type Hostname string

// Model maps a client-visible model name to backends.
type Model struct {
	// Name is what clients send in "model". A trailing "*" makes it a
	// pattern: "openai/*" matches "openai/gpt-4o" and sends "gpt-4o"
	// upstream unless providerModel is set. "*" elsewhere is invalid.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[^*]*\*?$`
	Name string `json:"name"`
	// Aliases are other names for the same model; they cannot be patterns.
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[^*]+$`
	// +optional
	Aliases []string `json:"aliases,omitempty"`
	// Backends are backend names in preference order: the first serves,
	// later ones are fallbacks.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	Backends []string `json:"backends"`
	// ProviderModel overrides the model name sent upstream.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ProviderModel string `json:"providerModel,omitempty"`
	// OwnedBy is shown in /v1/models.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	OwnedBy string `json:"ownedBy,omitempty"`
	// ContextWindow, when set, refuses (400 context_length_exceeded) a
	// request whose prompt tokens plus max_tokens exceed it, before it is
	// paid for upstream.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ContextWindow int64 `json:"contextWindow,omitempty"`
	// StoredResponses lets Responses API requests name a
	// previous_response_id that Weir issued to the same key.
	// +optional
	StoredResponses bool `json:"storedResponses,omitempty"`
}

// ProviderKind is the wire format a backend speaks: the providers the
// extproc's registry knows (a test keeps the two lists equal).
// +kubebuilder:validation:Enum=openai;anthropic;bedrock;azure;gemini;vertex
type ProviderKind string

// Preset names an OpenAI-compatible provider from Weir's preset table,
// which fills the provider and, unless set, the endpoint (a test keeps
// the two lists equal).
// +kubebuilder:validation:Enum=cerebras;deepseek;fireworks;groq;lmstudio;mistral;ollama;openrouter;perplexity;together;vllm;xai
type Preset string

// Backend is one upstream model server.
//
// +kubebuilder:validation:XValidation:rule="has(self.provider) || has(self.preset)",message="set provider or preset"
// +kubebuilder:validation:XValidation:rule="has(self.endpoint) || has(self.preset)",message="endpoint is required unless a preset supplies it"
// +kubebuilder:validation:XValidation:rule="!has(self.aws) || (has(self.provider) && self.provider == 'bedrock')",message="aws is only for provider bedrock"
// +kubebuilder:validation:XValidation:rule="!has(self.credential) || !has(self.credential.aws) || (has(self.provider) && self.provider == 'bedrock')",message="credential.aws is only for provider bedrock"
// +kubebuilder:validation:XValidation:rule="!has(self.credential) || !has(self.credential.serviceAccountKeyRef) || (has(self.provider) && self.provider == 'vertex')",message="credential.serviceAccountKeyRef is only for provider vertex"
type Backend struct {
	// Name is unique in the route and is what models refer to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Provider is the wire format the backend speaks.
	// +optional
	Provider ProviderKind `json:"provider,omitempty"`
	// Preset fills provider and endpoint for an OpenAI-compatible service.
	// +optional
	Preset Preset `json:"preset,omitempty"`
	// Endpoint is where the backend is: a Service in this namespace or an
	// external host reached over TLS.
	// +optional
	Endpoint *Endpoint `json:"endpoint,omitempty"`
	// Credential is the provider key, from a Secret in this namespace.
	// Optional for servers that need none (a local vLLM) and for bedrock
	// with the AWS default credential chain (IRSA).
	// +optional
	Credential *Credential `json:"credential,omitempty"`
	// AWS holds bedrock's signing region.
	// +optional
	AWS *AWSSettings `json:"aws,omitempty"`
	// Headers are added to every upstream request.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Headers []UpstreamHeader `json:"headers,omitempty"`
	// ForwardHeaders names client request headers passed to this backend
	// besides the provider's default allow-list; every other client header
	// is removed. Credentials, hop-by-hop and framing headers, x-amz-*,
	// x-envoy-* and x-weir-* are refused.
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9][a-z0-9-]*$`
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.all(h, !(h in ['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'accept-encoding', 'host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']) && !h.startsWith('x-amz-') && !h.startsWith('x-envoy-') && !h.startsWith('x-weir-'))",message="credentials, connection and framing headers, x-amz-*, x-envoy-* and x-weir-* cannot be forwarded"
	// +optional
	ForwardHeaders []string `json:"forwardHeaders,omitempty"`
	// ExposeHeaders names provider response headers passed to clients
	// besides the default allow-list.
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9][a-z0-9-]*$`
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.all(h, !(h in ['set-cookie', 'host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']) && !h.startsWith('x-envoy-') && !h.startsWith('x-weir-'))",message="set-cookie, connection and framing headers, x-envoy-* and x-weir-* cannot be exposed"
	// +optional
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// Options are provider-specific settings, such as azure's api_version;
	// each provider rejects keys it does not know (reported in status).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Options map[string]string `json:"options,omitempty"`
	// Timeout bounds one upstream attempt, first byte to last; unset means
	// 300s. A Go duration such as "90s" or "5m".
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('1h')",message="timeout must be more than 0s and at most 1h"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// Endpoint is a Service in the route's namespace or an external host.
// +kubebuilder:validation:XValidation:rule="has(self.service) != has(self.external)",message="set exactly one of service or external"
type Endpoint struct {
	// Service is an in-cluster model server (vLLM, Ollama, ...), reached
	// over plain HTTP unless tls is set.
	// +optional
	Service *ServiceReference `json:"service,omitempty"`
	// External is a host outside the cluster, always reached over TLS.
	// +optional
	External *ExternalEndpoint `json:"external,omitempty"`
	// BasePath is prepended to the provider's API paths (OpenAI-style
	// servers usually want "/v1").
	// +kubebuilder:validation:Pattern=`^(/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*/?$`
	// +kubebuilder:validation:MaxLength=256
	// +optional
	BasePath string `json:"basePath,omitempty"`
	// TLS adjusts certificate verification; it cannot turn it off. On a
	// service endpoint its presence switches to HTTPS.
	// +optional
	TLS *BackendTLS `json:"tls,omitempty"`
}

// ServiceReference names a Service port in the route's namespace.
type ServiceReference struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// ExternalEndpoint is a host outside the cluster.
type ExternalEndpoint struct {
	// Hostname is a DNS name (not an IP address: the certificate must name
	// it).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Hostname string `json:"hostname"`
	// +kubebuilder:default=443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// BackendTLS adjusts the verification of a backend's certificate.
type BackendTLS struct {
	// CACertificateRef is a PEM bundle of CAs to trust instead of the
	// system CAs (a private CA in front of a self-hosted model server).
	// +optional
	CACertificateRef *ConfigMapKeyRef `json:"caCertificateRef,omitempty"`
	// ServerName is sent as SNI and must be a DNS name in the certificate;
	// empty means the endpoint's host.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	// +optional
	ServerName string `json:"serverName,omitempty"`
	// SubjectAltNames, when set, are DNS names of which the certificate
	// must list at least one, instead of the server name.
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	// +optional
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
}

// Credential is where a backend's key comes from: exactly one source,
// each a Secret in the route's namespace. The controller reads the
// Secret and ships its value to the extproc; the Secret is never mounted.
// +kubebuilder:validation:XValidation:rule="[has(self.secretKeyRef), has(self.serviceAccountKeyRef), has(self.aws)].filter(x, x).size() == 1",message="set exactly one of secretKeyRef, serviceAccountKeyRef or aws"
type Credential struct {
	// SecretKeyRef holds an API key (or a bearer token).
	// +optional
	SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
	// ServiceAccountKeyRef holds a Google service-account JSON key
	// (provider vertex), from which Weir mints access tokens.
	// +optional
	ServiceAccountKeyRef *SecretKeyRef `json:"serviceAccountKeyRef,omitempty"`
	// AWS holds static AWS keys (provider bedrock). Without a credential
	// bedrock uses the default chain (IRSA, instance roles).
	// +optional
	AWS *AWSKeys `json:"aws,omitempty"`
}

// AWSKeys are static AWS keys from Secrets.
type AWSKeys struct {
	AccessKeyIDRef     SecretKeyRef `json:"accessKeyIDRef"`
	SecretAccessKeyRef SecretKeyRef `json:"secretAccessKeyRef"`
	// SessionTokenRef goes with temporary keys.
	// +optional
	SessionTokenRef *SecretKeyRef `json:"sessionTokenRef,omitempty"`
}

// AWSSettings are a bedrock backend's signing settings.
type AWSSettings struct {
	// Region signs requests; empty means the region in the endpoint's
	// host (bedrock-runtime.<region>.amazonaws.com).
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Region string `json:"region,omitempty"`
}

// UpstreamHeader is a header added to upstream requests, from a literal
// or a Secret (an organization id may be either).
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.secretKeyRef)",message="set exactly one of value or secretKeyRef"
type UpstreamHeader struct {
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9-]*$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('x-weir-')",message="x-weir-* headers are the gateway's own"
	Name string `json:"name"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Value string `json:"value,omitempty"`
	// +optional
	SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
}

// SecretKeyRef is a key of a Secret in the referring object's namespace.
// Unlike corev1.SecretKeySelector it has no "optional": a credential that
// may be missing is a route that silently fails.
type SecretKeyRef struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// ConfigMapKeyRef is a key of a ConfigMap in the referring object's
// namespace.
type ConfigMapKeyRef struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// AIRouteStatus is what the controller observed.
type AIRouteStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted, ResolvedRefs, Programmed, Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AIRouteList is a list of AIRoutes.
// +kubebuilder:object:root=true
type AIRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AIRoute `json:"items"`
}
