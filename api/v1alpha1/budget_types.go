package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Budget is the budget and rate limits of a user, a team, an organization
// or the whole gateway: the home of what Weir's YAML config calls
// auth.users, auth.teams, auth.organizations and auth.global.
//
// It is cluster-scoped because its subjects are: a team's keys live in
// several namespaces, and the global budget covers them all. Keeping it
// out of VirtualKey means a tenant who may write keys cannot raise the
// budget of their team; RBAC on this kind decides who may (see the
// VirtualKey doc). One Budget per subject: a second Budget for the same
// subject is refused with Accepted=False, reason Conflict (the older
// wins), since CEL sees one object only.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=weir
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.subject.kind`
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject.name`
// +kubebuilder:printcolumn:name="Spend",type=string,JSONPath=`.status.spend`
// +kubebuilder:printcolumn:name="Budget",type=string,JSONPath=`.spec.maxBudget`
// +kubebuilder:printcolumn:name="Period",type=string,JSONPath=`.spec.budgetDuration`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type Budget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BudgetSpec `json:"spec"`
	// +optional
	Status BudgetStatus `json:"status,omitempty"`
}

// SubjectKind is what a Budget limits.
// +kubebuilder:validation:Enum=User;Team;Organization;Global
type SubjectKind string

// Subject kinds.
const (
	SubjectUser         SubjectKind = "User"
	SubjectTeam         SubjectKind = "Team"
	SubjectOrganization SubjectKind = "Organization"
	SubjectGlobal       SubjectKind = "Global"
)

// BudgetSpec is the subject's limits.
//
// +kubebuilder:validation:XValidation:rule="(self.subject.kind == 'Global') == !has(self.subject.name)",message="subject.name is required, except for kind Global, which has none"
// +kubebuilder:validation:XValidation:rule="!has(self.organization) || self.subject.kind == 'Team'",message="organization places a team; only kind Team has one"
// +kubebuilder:validation:XValidation:rule="!has(self.models) || self.subject.kind in ['User', 'Team']",message="models restrict a user's or a team's keys; organizations and Global have none"
// +kubebuilder:validation:XValidation:rule="!has(self.blocked) || !self.blocked || self.subject.kind == 'Team'",message="only a team can be blocked; block its keys otherwise"
type BudgetSpec struct {
	// Subject is who the limits apply to.
	Subject Subject `json:"subject"`
	// Limits are the subject's budget and rate limits.
	Limits `json:",inline"`
	// ModelLimits apply to one model each.
	// +listType=map
	// +listMapKey=model
	// +kubebuilder:validation:MaxItems=64
	// +optional
	ModelLimits []ModelLimit `json:"modelLimits,omitempty"`
	// Organization places a team in an organization, whose Budget then
	// applies to the team's keys too.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Organization string `json:"organization,omitempty"`
	// Models, for a user or team, are the models its keys may use (exact
	// names, "provider/*" or "*"); a request must be allowed by the key,
	// its user and its team. Empty means no restriction.
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[^*]*\*?$`
	// +optional
	Models []string `json:"models,omitempty"`
	// Blocked, for a team, refuses every key of the team (403).
	// +kubebuilder:default=false
	// +optional
	Blocked bool `json:"blocked,omitempty"`
}

// Subject names a user, team or organization (as VirtualKeys name them
// in spec.user, spec.team and spec.organization), or the gateway.
type Subject struct {
	Kind SubjectKind `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
}

// BudgetStatus is what the controller observed.
type BudgetStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	SpendStatus        `json:",inline"`
	// Conditions: Accepted, Programmed, BudgetExceeded, Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BudgetList is a list of Budgets.
// +kubebuilder:object:root=true
type BudgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Budget `json:"items"`
}
