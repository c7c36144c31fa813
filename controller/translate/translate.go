package translate

import (
	"cmp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
)

// Input is everything Translate reads: the cluster's objects as the
// controller listed them, and what it knows itself.
type Input struct {
	Routes   []weirv1a1.AIRoute
	Keys     []weirv1a1.VirtualKey
	Budgets  []weirv1a1.Budget
	Secrets  []corev1.Secret
	Services []corev1.Service
	// Issued is, per VirtualKey, the hash of its current key and, during
	// a rotation's grace period, of the previous ones (from the key's
	// Secret). A key without an entry is not issued yet.
	Issued map[types.NamespacedName]IssuedKey
	// Base is the controller's own settings (listener limits, limits
	// store, spend, logging, pricing, responses). Translate replaces its
	// backends, models, auth (except optional_paths), listener hostnames
	// and, when a route is accepted, listener max_body_bytes.
	Base config.Config
	// Now decides which keys have expired; Translate reads no clock.
	Now time.Time
	// ClusterDomain is the cluster's DNS suffix: "cluster.local".
	ClusterDomain string
	// CheckBackend, when set, is the data plane's own check of a backend
	// (its provider exists and knows its options), which config.Validate
	// does not make: a backend it refuses makes its route Invalid, where
	// it would otherwise make every replica refuse the whole config. The
	// controller does not link the extproc's provider registry (test/arch),
	// so nil checks only what config.Validate does.
	CheckBackend func(*config.Backend) error
}

// IssuedKey is a VirtualKey's key hashes.
type IssuedKey struct {
	// Hash is the hex SHA-256 of the current key.
	Hash string
	// Previous are keys replaced by rotations, still valid until their
	// ExpiresAt.
	Previous []PreviousKey
}

// PreviousKey is a rotated-out key in its grace period.
type PreviousKey struct {
	Hash      string
	ExpiresAt time.Time
}

// Object names a Weir object; Budgets have no namespace.
type Object struct {
	Kind      string
	Namespace string
	Name      string
}

// Status is what Translate found about one object: Accepted,
// ResolvedRefs (AIRoutes and VirtualKeys) and, on a VirtualKey that is
// not ready for a reason of its own, Ready (Pending, Expired, Blocked).
// The controller adds Programmed and the Ready summary.
type Status struct {
	ObservedGeneration int64
	Conditions         []metav1.Condition
}

// Output is the config for every extproc replica and each object's
// status.
type Output struct {
	Config *config.Config
	Status map[Object]Status
}

// Kinds as they appear in [Object].
const (
	KindAIRoute    = "AIRoute"
	KindVirtualKey = "VirtualKey"
	KindBudget     = "Budget"
)

// Translate renders the objects into one config; see the package doc for
// the rules. It never fails: an object it cannot use is left out and its
// status says why, so one bad object never breaks the config of the
// others.
func Translate(in Input) Output {
	return translate(in, backendName)
}

func translate(in Input, names func(ns, route, backend string) string) Output {
	t := &translator{
		backendName: names,
		in:          in,
		out:         Output{Status: make(map[Object]Status, len(in.Routes)+len(in.Keys)+len(in.Budgets))},
		secrets:     make(map[types.NamespacedName]*corev1.Secret, len(in.Secrets)),
		services:    make(map[types.NamespacedName]*corev1.Service, len(in.Services)),
	}
	for i := range in.Secrets {
		s := &in.Secrets[i]
		t.secrets[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	for i := range in.Services {
		s := &in.Services[i]
		t.services[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	cfg := in.Base
	cfg.Version = config.Version
	cfg.Auth = config.Auth{OptionalPaths: in.Base.Auth.OptionalPaths}
	cfg.Backends, cfg.Models = nil, nil
	cfg.Listener.Hostnames = nil
	routes := t.routes(&cfg)
	blocked := t.budgets(&cfg)
	t.keys(&cfg, routes, blocked)
	t.out.Config = &cfg
	for obj, st := range t.out.Status {
		slices.SortStableFunc(st.Conditions, func(a, b metav1.Condition) int { return condOrder[a.Type] - condOrder[b.Type] })
		t.out.Status[obj] = st
	}
	return t.out
}

// condOrder is the order of conditions in a status.
var condOrder = map[string]int{weirv1a1.ConditionAccepted: 0, weirv1a1.ConditionResolvedRefs: 1, weirv1a1.ConditionReady: 2}

type translator struct {
	// backendName derives config backend names; tests force collisions.
	backendName func(ns, route, backend string) string
	in          Input
	out         Output
	secrets     map[types.NamespacedName]*corev1.Secret
	services    map[types.NamespacedName]*corev1.Service
}

// set records a condition on obj.
func (t *translator) set(obj Object, gen int64, typ string, ok bool, reason, msg string) {
	st := t.out.Status[obj]
	st.ObservedGeneration = gen
	if st.Conditions == nil {
		st.Conditions = make([]metav1.Condition, 0, 3) // Accepted, ResolvedRefs, Ready
	}
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	st.Conditions = append(st.Conditions, metav1.Condition{
		Type: typ, Status: s, Reason: reason, Message: msg,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(t.in.Now),
	})
	t.out.Status[obj] = st
}

// replace turns obj's condition typ False with reason and msg, and drops
// its Ready condition, which described a key that is no longer shipped.
func (t *translator) replace(obj Object, typ, reason, msg string) {
	st := t.out.Status[obj]
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c metav1.Condition) bool {
		return c.Type == typ || c.Type == weirv1a1.ConditionReady
	})
	t.out.Status[obj] = st
	t.set(obj, st.ObservedGeneration, typ, false, reason, msg)
}

// olderFirst orders objects by age, then namespace/name: the older of two
// objects claiming the same thing wins, as in Gateway API.
func olderFirst(a, b *metav1.ObjectMeta) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// byAge returns pointers to items sorted by [olderFirst].
func byAge[T any](items []T, meta func(*T) *metav1.ObjectMeta) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	slices.SortFunc(out, func(a, b *T) int { return olderFirst(meta(a), meta(b)) })
	return out
}
