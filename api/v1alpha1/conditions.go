package v1alpha1

// Condition types on the status of every Weir object. They are
// metav1.Conditions: each carries the object's generation it was computed
// from (observedGeneration) and one of the reasons below, which scripts
// and alerts may match on; the message is for people and may change.
const (
	// ConditionAccepted is True when the object is valid as a whole: CEL
	// checked what one object can; this is what it could not (for
	// example a Budget naming a subject another Budget already has).
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every object it names exists and
	// may be used: Secrets, Services, and for a VirtualKey its AIRoutes
	// (including the route's allowedNamespaces).
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed is True when every extproc replica and Envoy
	// have ACKed the config that carries this generation of the object.
	ConditionProgrammed = "Programmed"
	// ConditionBudgetExceeded is True on a VirtualKey or Budget whose
	// spend in the current period has reached its maxBudget; requests are
	// refused until the period resets.
	ConditionBudgetExceeded = "BudgetExceeded"
	// ConditionReady summarises the others for `kubectl get`: True when
	// Accepted, ResolvedRefs and Programmed are True and no budget is
	// exceeded; its reason is that of the first condition that is not.
	ConditionReady = "Ready"
)

// Reasons. Each condition type has a positive reason (status True, or
// False for BudgetExceeded) and the failures users must act on.
const (
	// ReasonAccepted: Accepted is True.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: Accepted is False; the message names the field.
	ReasonInvalid = "Invalid"
	// ReasonConflict: Accepted is False because another object claims the
	// same thing (a hostname and path, or a Budget subject); the older
	// object wins, as in Gateway API.
	ReasonConflict = "Conflict"

	// ReasonResolvedRefs: ResolvedRefs is True.
	ReasonResolvedRefs = "ResolvedRefs"
	// ReasonSecretNotFound: a referenced Secret, or its key, is missing.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonServiceNotFound: a backend's Service, or its port, is missing.
	ReasonServiceNotFound = "ServiceNotFound"
	// ReasonRouteNotFound: a VirtualKey names an AIRoute that does not
	// exist.
	ReasonRouteNotFound = "RouteNotFound"
	// ReasonUnsupported: a reference the controller cannot serve yet (a
	// backend's tls.caCertificateRef); the message says what and why, and
	// the backend is left out rather than run without it.
	ReasonUnsupported = "Unsupported"
	// ReasonNotAllowedByRoute: a VirtualKey names an AIRoute in another
	// namespace whose allowedNamespaces does not include the key's.
	ReasonNotAllowedByRoute = "NotAllowedByRoute"

	// ReasonProgrammed: Programmed is True.
	ReasonProgrammed = "Programmed"
	// ReasonPending: Programmed is False while replicas have not yet ACKed.
	ReasonPending = "Pending"
	// ReasonRejected: Programmed is False because a replica or Envoy
	// NACKed the config; the message carries the NACK's error.
	ReasonRejected = "Rejected"

	// ReasonWithinBudget: BudgetExceeded is False.
	ReasonWithinBudget = "WithinBudget"
	// ReasonSoftBudgetExceeded: BudgetExceeded is False but spend passed
	// softBudget (an alert; requests still pass).
	ReasonSoftBudgetExceeded = "SoftBudgetExceeded"
	// ReasonBudgetExceeded: BudgetExceeded is True.
	ReasonBudgetExceeded = "BudgetExceeded"

	// ReasonReady: Ready is True.
	ReasonReady = "Ready"
	// ReasonExpired: Ready is False on a VirtualKey past expiresAt. CEL
	// cannot check that an expiry is in the future (rules see no clock),
	// so a key created already expired is accepted and reported here.
	ReasonExpired = "Expired"
	// ReasonBlocked: Ready is False on a blocked VirtualKey, or one whose
	// team's Budget is blocked.
	ReasonBlocked = "Blocked"
)

// RotateAnnotation, set on a VirtualKey to any new value (a timestamp is
// conventional), makes the controller issue a new key into the same
// Secret; the previous key keeps working for spec.rotation.gracePeriod.
const RotateAnnotation = "weir.dev/rotate"
