package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// USD is an amount of US dollars as a decimal string: "100", "12.50",
// "0.000125". Money is a string, not a float (Kubernetes API conventions
// forbid floats, and 0.1 has no exact binary form) and not a
// resource.Quantity (which would accept "1k" and "500m", where "m" reads
// as millions to anyone budgeting, and prints its own canonical form back
// instead of what the user wrote). The pattern admits no sign, so a
// budget cannot be negative, and at most 6 decimals, the precision of
// per-token prices.
// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$`
// +kubebuilder:validation:MaxLength=19
type USD string

// BudgetPeriod is how often a budget resets. These are calendar periods
// aligned to the gateway's time zone, not Go durations, so "1d" and "1mo"
// are valid here and "24h" is not.
// +kubebuilder:validation:Enum="1h";"1d";"7d";"30d";"1mo"
type BudgetPeriod string

// Limits are budgets and rate limits. An unset or zero limit means no
// limit; the tightest limit of the key, its user, team, organization and
// the global Budget applies.
// +kubebuilder:validation:XValidation:rule="!has(self.softBudget) || !has(self.maxBudget) || double(self.softBudget) <= double(self.maxBudget)",message="softBudget must not exceed maxBudget"
// +kubebuilder:validation:XValidation:rule="!has(self.budgetDuration) || has(self.maxBudget) || has(self.softBudget)",message="budgetDuration needs maxBudget or softBudget"
type Limits struct {
	// MaxBudget is the spend (USD) after which requests are refused until
	// the period resets.
	// +optional
	MaxBudget USD `json:"maxBudget,omitempty"`
	// SoftBudget is the spend (USD) that raises an alert; requests pass.
	// +optional
	SoftBudget USD `json:"softBudget,omitempty"`
	// BudgetDuration is the budget's period; unset means it never resets.
	// +optional
	BudgetDuration BudgetPeriod `json:"budgetDuration,omitempty"`
	// RPMLimit caps requests per minute.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RPMLimit int64 `json:"rpmLimit,omitempty"`
	// TPMLimit caps tokens (prompt and completion) per minute.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TPMLimit int64 `json:"tpmLimit,omitempty"`
	// MaxParallelRequests caps requests in flight.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxParallelRequests int64 `json:"maxParallelRequests,omitempty"`
}

// ModelLimit is a Limits that applies to one model only, on top of the
// object's own.
type ModelLimit struct {
	// Model is the model name as the client sends it (after aliases).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Model string `json:"model"`
	// +kubebuilder:validation:Optional
	Limits `json:",inline"`
}

// BudgetState summarises spend against the budget in status.
// +kubebuilder:validation:Enum=WithinBudget;SoftBudgetExceeded;BudgetExceeded
type BudgetState string

// Budget states; they are also the reasons of the BudgetExceeded
// condition.
const (
	BudgetStateWithin       BudgetState = ReasonWithinBudget
	BudgetStateSoftExceeded BudgetState = ReasonSoftBudgetExceeded
	BudgetStateExceeded     BudgetState = ReasonBudgetExceeded
)

// SpendStatus is the spend of the current budget period, copied from the
// limits store periodically (the controller's spend interval, 30 s by
// default) and in batches, never per request, so it lags by up to that
// interval.
type SpendStatus struct {
	// Spend is the USD spent in the current period.
	// +optional
	Spend USD `json:"spend,omitempty"`
	// BudgetState compares Spend with the budgets.
	// +optional
	BudgetState BudgetState `json:"budgetState,omitempty"`
	// PeriodResetsAt is when the current budget period ends.
	// +optional
	PeriodResetsAt *metav1.Time `json:"periodResetsAt,omitempty"`
	// SpendUpdatedAt is when Spend was read from the store.
	// +optional
	SpendUpdatedAt *metav1.Time `json:"spendUpdatedAt,omitempty"`
}
