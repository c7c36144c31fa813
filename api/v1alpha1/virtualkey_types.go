package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualKey is a key clients present to the gateway, with its models,
// budgets and rate limits. The controller generates the key itself,
// writes it to a Secret owned by the VirtualKey (named in
// status.secretName) for the app team to mount, and ships only its
// SHA-256 to the data plane. Setting the weir.dev/rotate annotation
// issues a new key; the old one works for spec.rotation.gracePeriod.
//
// The key's team, organization and user are names; their own budgets
// and the gateway-wide one live in Budget objects (cluster-scoped), not
// here. A VirtualKey is written by the app team that owns its namespace;
// if a team budget were a VirtualKey field, any key's author could raise
// the budget of the whole team, and two keys could disagree on it. A
// separate, cluster-scoped kind gives each budget one owner, one object
// and its own RBAC (platform admins write Budgets, tenants read them).
//
// expiresAt is not checked against the clock by CEL (validation rules
// see no current time); a key created already expired is accepted and
// reported Ready=False with reason Expired.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vk,categories=weir
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.spec.team`
// +kubebuilder:printcolumn:name="Models",type=string,JSONPath=`.spec.models`
// +kubebuilder:printcolumn:name="Spend",type=string,JSONPath=`.status.spend`
// +kubebuilder:printcolumn:name="Budget",type=string,JSONPath=`.spec.maxBudget`
// +kubebuilder:printcolumn:name="Expiry",type=date,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec VirtualKeySpec `json:"spec"`
	// +optional
	Status VirtualKeyStatus `json:"status,omitempty"`
}

// VirtualKeySpec is the key's desired state. The key's alias in spend
// records and the admin API is namespace/name.
//
// +kubebuilder:validation:XValidation:rule="!has(self.aliases) || !has(self.models) || self.aliases.all(a, !(a in self.models))",message="an alias must not equal one of the key's models"
type VirtualKeySpec struct {
	// Routes are the AIRoutes the key may use. A route in another
	// namespace must list this key's namespace in allowedNamespaces.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Routes []RouteReference `json:"routes"`
	// Models the key may use: exact names, "provider/*" prefixes or "*",
	// matched after aliases. Empty means every model of its routes.
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[^*]*\*?$`
	// +optional
	Models []string `json:"models,omitempty"`
	// Aliases rename models for this key only: {"smart": "gpt-4o"}. An
	// alias cannot be a pattern.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.contains('*') && size(k) > 0 && size(self[k]) > 0)",message="aliases and their targets must be non-empty and aliases cannot contain '*'"
	// +optional
	Aliases map[string]string `json:"aliases,omitempty"`

	// Limits are the key's own budget and rate limits.
	Limits `json:",inline"`
	// ModelLimits apply to one model each, on top of the key's limits.
	// +listType=map
	// +listMapKey=model
	// +kubebuilder:validation:MaxItems=64
	// +optional
	ModelLimits []ModelLimit `json:"modelLimits,omitempty"`

	// ExpiresAt is when the key stops working (401).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// Blocked refuses every request with the key (403) without deleting
	// it, so its spend history stays.
	// +optional
	Blocked bool `json:"blocked,omitempty"`

	// User, Team and Organization attribute spend and apply the Budget
	// of each (a Budget whose subject has that kind and name).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	User string `json:"user,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Team string `json:"team,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Organization string `json:"organization,omitempty"`
	// Metadata is free-form and copied into spend records.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
	// Tags are copied into spend records.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=128
	// +optional
	Tags []string `json:"tags,omitempty"`

	// Rotation configures key rotation (see the weir.dev/rotate
	// annotation).
	// +optional
	Rotation *Rotation `json:"rotation,omitempty"`
}

// RouteReference names an AIRoute.
type RouteReference struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace defaults to the VirtualKey's.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Rotation configures how a key is replaced.
type Rotation struct {
	// GracePeriod is how long the previous key keeps working after a
	// rotation, so clients can pick up the new Secret; "0s" revokes it at
	// once. A Go duration, at most 30 days (720h).
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('720h')",message="gracePeriod must be at most 720h"
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// VirtualKeyStatus is what the controller observed.
type VirtualKeyStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// SecretName is the Secret (in the key's namespace, owned by it) that
	// holds the key under "key".
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// LastRotatedAt is when the current key was issued.
	// +optional
	LastRotatedAt *metav1.Time `json:"lastRotatedAt,omitempty"`
	// PreviousKeyExpiresAt is when the key replaced by the last rotation
	// stops working.
	// +optional
	PreviousKeyExpiresAt *metav1.Time `json:"previousKeyExpiresAt,omitempty"`
	SpendStatus          `json:",inline"`
	// Conditions: Accepted, ResolvedRefs, Programmed, BudgetExceeded, Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// VirtualKeyList is a list of VirtualKeys.
// +kubebuilder:object:root=true
type VirtualKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualKey `json:"items"`
}
