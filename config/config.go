// Package config is the contract between Weir's control side (the controller,
// or a YAML file) and the extproc data plane.
//
// The types here deliberately know nothing of Kubernetes or Envoy, so the
// data plane can be configured and tested without a cluster. The controller
// renders CRDs into a [Config]; standalone users write the same thing in YAML.
package config

import (
	"time"
)

// Version is the config schema version this build understands. A file with a
// different version is refused so that, during a rolling upgrade, an extproc
// keeps its last good config instead of misreading a newer schema.
const Version = "weir.dev/v1alpha1"

// Provider names the wire format a backend speaks, such as "openai" or
// "anthropic". The extproc's provider registry defines the valid names, so
// adding a provider never touches this package.
type Provider string

// Config is the whole extproc configuration.
type Config struct {
	// Version must equal [Version].
	Version string `yaml:"version" json:"version"`
	// Listener holds limits applied to every client request.
	Listener Listener `yaml:"listener" json:"listener"`
	// Backends are the upstream model servers.
	Backends []Backend `yaml:"backends" json:"backends"`
	// Models map client-visible model names to backends.
	Models []Model `yaml:"models" json:"models"`
	// Logging controls the access log.
	Logging Logging `yaml:"logging" json:"logging"`
	// Auth holds virtual keys and the limits of keys, users, teams,
	// organizations and the whole gateway.
	Auth Auth `yaml:"auth,omitempty" json:"auth,omitempty"`
	// Limits says where limit counters live (memory or Redis) and how a
	// Redis outage is handled.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitempty"`
	// Spend says where spend records are written.
	Spend Spend `yaml:"spend,omitempty" json:"spend,omitempty"`
	// Pricing overrides the embedded pricing table.
	Pricing []PriceOverride `yaml:"pricing,omitempty" json:"pricing,omitempty"`
	// Responses holds the secret that binds Responses API ids to keys.
	Responses Responses `yaml:"responses,omitempty" json:"responses,omitempty"`
}

// Listener holds per-request limits.
type Listener struct {
	// MaxBodyBytes caps the client request body. Larger bodies get a 413.
	// Zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// Hostnames are the request hosts Envoy serves (its virtual host's
	// domains); a leading "*." matches any subdomain. Other hosts get a
	// 404 from Envoy without reaching the extproc. Empty means every host.
	Hostnames []string `yaml:"hostnames,omitempty" json:"hostnames,omitempty"`
}

// DefaultMaxBodyBytes is the request body limit when none is configured:
// large enough for a long conversation with a few base64 images.
const DefaultMaxBodyBytes = 8 << 20

// Backend is one upstream model server.
type Backend struct {
	// Name is unique among backends; it is the routing key Envoy matches on,
	// so it is restricted to DNS-label characters.
	Name string `yaml:"name" json:"name"`
	// Provider is the wire format the backend speaks.
	Provider Provider `yaml:"provider" json:"provider"`
	// Preset names an OpenAI-compatible provider (groq, mistral, ollama,
	// ...; see presets.yaml) that fills Provider, BaseURL and the key's
	// environment variable when they are not set.
	Preset string `yaml:"preset,omitempty" json:"preset,omitempty"`
	// BaseURL is scheme://host[:port][/prefix]; the provider's API paths are
	// appended to the prefix (for OpenAI, base URLs end in /v1).
	BaseURL string `yaml:"base_url" json:"base_url"`
	// Credential is where the provider API key comes from. Optional for
	// servers that need none (a local vLLM, the fake providers).
	Credential *Credential `yaml:"credential,omitempty" json:"credential,omitempty"`
	// Headers are added to every upstream request (for example an
	// organization id). Values may be secret, so they are redacted in logs.
	Headers map[string]Secret `yaml:"headers,omitempty" json:"headers,omitempty"`
	// ForwardHeaders names client request headers passed to this backend
	// besides its provider's default allow-list; every other client header
	// is removed before the request leaves. Lower-case names; credentials,
	// hop-by-hop and framing headers, x-amz-*, x-envoy-* and x-weir-* are
	// refused (README "Headers that cross the gateway").
	ForwardHeaders []string `yaml:"forward_headers,omitempty" json:"forward_headers,omitempty"`
	// ExposeHeaders names provider response headers passed to clients
	// besides the default allow-list (content-type, retry-after, ...), for
	// example x-ratelimit-limit-tokens. A header Weir sets itself keeps
	// Weir's value.
	ExposeHeaders []string `yaml:"expose_headers,omitempty" json:"expose_headers,omitempty"`
	// Options are provider-specific settings, such as azure's api_version.
	// Each provider documents the keys it reads and rejects unknown ones
	// when the config loads.
	Options map[string]string `yaml:"options,omitempty" json:"options,omitempty"`
	// Timeout bounds one upstream attempt, first byte to last. Zero means
	// [DefaultBackendTimeout].
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// AWS holds the region and credentials of a backend that signs its
	// requests with AWS Signature Version 4 (provider "bedrock"). Other
	// providers ignore it.
	AWS *AWSAuth `yaml:"aws,omitempty" json:"aws,omitempty"`
	// TLS adjusts how an https backend's certificate is verified. Without
	// it the certificate must chain to the system CAs and name the base
	// URL's host. Only valid with an https base URL.
	TLS *BackendTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
}

// BackendTLS adjusts the verification of an https backend's certificate.
// Verification itself cannot be turned off.
type BackendTLS struct {
	// CAFile is a PEM bundle of the CAs to trust, read by Envoy; when set it
	// replaces the system CAs (for example a private CA in front of a
	// self-hosted model server).
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// ServerName is sent as SNI and must be a DNS subject alternative name
	// of the certificate; empty means the base URL's host. Set it when the
	// base URL names an IP address or an alias the certificate does not
	// list.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// SubjectAltNames, when set, are the DNS names of which the certificate
	// must list at least one (exactly, or through a wildcard in the
	// certificate), instead of the server name.
	SubjectAltNames []string `yaml:"subject_alt_names,omitempty" json:"subject_alt_names,omitempty"`
}

// AWSAuth configures AWS request signing. With no static keys the AWS
// default credential chain is used (AWS_* environment variables, web
// identity / IRSA, shared config files, container and instance roles).
type AWSAuth struct {
	// Region signs requests; empty means the region in the base URL's host
	// (bedrock-runtime.<region>.amazonaws.com), else AWS_REGION.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// AccessKeyID and SecretAccessKey are static keys; set both or neither.
	AccessKeyID     Secret `yaml:"access_key_id,omitempty" json:"access_key_id,omitempty"`
	SecretAccessKey Secret `yaml:"secret_access_key,omitempty" json:"secret_access_key,omitempty"`
	// SessionToken goes with temporary static keys.
	SessionToken Secret `yaml:"session_token,omitempty" json:"session_token,omitempty"`
}

// DefaultBackendTimeout is long because reasoning models can think for
// minutes before the last token.
const DefaultBackendTimeout = 300 * time.Second

// Credential names the source of a backend's API key. Exactly one of Env,
// File or Value is set; Load resolves it into Key.
type Credential struct {
	// Env is an environment variable holding the key.
	Env string `yaml:"env,omitempty" json:"env,omitempty"`
	// File is a path whose trimmed content is the key (a mounted Secret).
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Value is the key inline. Prefer Env or File; this exists for the
	// controller, which resolves Secrets itself.
	Value Secret `yaml:"value,omitempty" json:"value,omitempty"`
	// Key is the resolved key. It is never read from YAML.
	Key Secret `yaml:"-" json:"-"`
}

// Model maps a client-visible model name to a backend.
type Model struct {
	// Name is what clients send in "model". A trailing "*" makes it a
	// wildcard: "openai/*" matches "openai/gpt-4o" and, unless
	// ProviderModel is set, sends "gpt-4o" upstream: the part up to the
	// pattern's last "/" is a routing namespace and is stripped. The longest
	// matching pattern wins; exact names and aliases beat patterns.
	Name string `yaml:"name" json:"name"`
	// Aliases are other names for the same model.
	Aliases []string `yaml:"aliases,omitempty" json:"aliases,omitempty"`
	// Backends lists backend names in preference order. The first is used
	// today; later entries are fallbacks.
	Backends []string `yaml:"backends" json:"backends"`
	// ProviderModel overrides the model name sent upstream.
	ProviderModel string `yaml:"provider_model,omitempty" json:"provider_model,omitempty"`
	// OwnedBy is shown in /v1/models.
	OwnedBy string `yaml:"owned_by,omitempty" json:"owned_by,omitempty"`
	// ContextWindow, when set, refuses with a 400 context_length_exceeded
	// a request whose prompt tokens plus max_tokens exceed it, before it
	// is sent (and paid for) upstream.
	ContextWindow int64 `yaml:"context_window,omitempty" json:"context_window,omitempty"`
	// StoredResponses lets Responses API requests to this model name a
	// previous_response_id, one that Weir issued to the same key (see
	// [Responses]). Off by default: the request is refused with a 400.
	StoredResponses bool `yaml:"stored_responses,omitempty" json:"stored_responses,omitempty"`
}

// IsWildcard reports whether the model name is a prefix pattern.
func (m *Model) IsWildcard() bool {
	return len(m.Name) > 0 && m.Name[len(m.Name)-1] == '*'
}

// Logging controls the per-request access log.
type Logging struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level,omitempty" json:"level,omitempty"`
	// LogBodies adds request and response bodies to the access log. Off by
	// default because prompts are often confidential.
	LogBodies bool `yaml:"log_bodies,omitempty" json:"log_bodies,omitempty"`
}

// MaxBody returns the effective body limit.
func (c *Config) MaxBody() int64 {
	if c.Listener.MaxBodyBytes > 0 {
		return c.Listener.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// Backend returns the backend with the given name, or nil.
func (c *Config) Backend(name string) *Backend {
	for i := range c.Backends {
		if c.Backends[i].Name == name {
			return &c.Backends[i]
		}
	}
	return nil
}

// EffectiveTimeout returns the attempt timeout.
func (b *Backend) EffectiveTimeout() time.Duration {
	if b.Timeout > 0 {
		return time.Duration(b.Timeout)
	}
	return DefaultBackendTimeout
}
