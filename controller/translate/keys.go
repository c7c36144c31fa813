package translate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
)

// isHexHash reports whether s is a lower-case hex SHA-256, as
// config.Validate wants a key hash. A loop, not a regexp: it runs for
// every key of the cluster on every translation.
func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isLimitsID reports whether s is a valid config limits_id: 1 to 128 of
// A-Z a-z 0-9 . _ - (a Kubernetes UID is).
func isLimitsID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keys adds a KeyConfig per issued hash of every usable VirtualKey.
func (t *translator) keys(cfg *config.Config, routes map[types.NamespacedName]*routeInfo, blockedTeams map[string]string) {
	owner := make(map[string]*weirv1a1.VirtualKey, len(t.in.Keys))
	cfg.Auth.Keys = make([]config.KeyConfig, 0, len(t.in.Keys))
	owners := make([]Object, 0, len(t.in.Keys))
	var served []string
	for _, k := range byAge(t.in.Keys, func(k *weirv1a1.VirtualKey) *metav1.ObjectMeta { return &k.ObjectMeta }) {
		obj := Object{KindVirtualKey, k.Namespace, k.Name}
		gen := k.Generation

		served = served[:0]
		var problems []string
		reason := ""
		for _, ref := range k.Spec.Routes {
			ns := ref.Namespace
			if ns == "" {
				ns = k.Namespace
			}
			r := routes[types.NamespacedName{Namespace: ns, Name: ref.Name}]
			why, rsn := "", weirv1a1.ReasonRouteNotFound
			switch {
			case r == nil:
				why = fmt.Sprintf("AIRoute %s/%s not found", ns, ref.Name)
			case !allows(r.route, k.Namespace):
				why, rsn = fmt.Sprintf("AIRoute %s/%s does not allow namespace %s (spec.allowedNamespaces)", ns, ref.Name, k.Namespace), weirv1a1.ReasonNotAllowedByRoute
			case !r.accepted:
				why = fmt.Sprintf("AIRoute %s/%s is not accepted (%s)", ns, ref.Name, r.why)
			default:
				served = append(served, r.served...)
				continue
			}
			problems = append(problems, why)
			if reason == "" {
				reason = rsn
			}
		}
		if reason == "" {
			t.set(obj, gen, weirv1a1.ConditionResolvedRefs, true, weirv1a1.ReasonResolvedRefs, "every AIRoute the key names allows it")
		} else {
			// The key keeps the models of its other routes: losing a route
			// only ever takes models away.
			t.set(obj, gen, weirv1a1.ConditionResolvedRefs, false, reason, strings.Join(problems, "; ")+"; the key cannot use the models of these routes")
		}

		lim, err := limits(k.Spec.Limits)
		var ml map[string]config.LimitsConfig
		if err == nil {
			ml, err = modelLimits(k.Spec.ModelLimits)
		}
		if err != nil {
			t.set(obj, gen, weirv1a1.ConditionAccepted, false, weirv1a1.ReasonInvalid, err.Error())
			continue
		}
		issued, ok := t.in.Issued[types.NamespacedName{Namespace: k.Namespace, Name: k.Name}]
		if !ok || !isHexHash(issued.Hash) {
			t.set(obj, gen, weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "the key is valid")
			t.set(obj, gen, weirv1a1.ConditionReady, false, weirv1a1.ReasonPending, "the key is not issued yet: the controller writes it to the key's Secret first")
			continue
		}
		hashes := []string{issued.Hash}
		expiries := []*time.Time{specExpiry(k)}
		for _, p := range issued.Previous {
			// A repeated hash (an issuer's slip) is shipped once: the
			// data plane refuses a config with two keys of one hash.
			if !t.in.Now.Before(p.ExpiresAt) || !isHexHash(p.Hash) || slices.Contains(hashes, p.Hash) {
				continue
			}
			e := p.ExpiresAt
			if s := specExpiry(k); s != nil && s.Before(e) {
				e = *s
			}
			hashes, expiries = append(hashes, p.Hash), append(expiries, &e)
		}
		if o := firstOwner(owner, hashes); o != nil {
			t.set(obj, gen, weirv1a1.ConditionAccepted, false, weirv1a1.ReasonConflict,
				fmt.Sprintf("VirtualKey %s/%s, which is older, already has this key's hash; issue a new key (annotate %s)", o.Namespace, o.Name, weirv1a1.RotateAnnotation))
			continue
		}
		models := grant(k.Spec.Models, served)
		msg := "the key is valid"
		switch {
		case !slices.Equal(models, []string{noModel}):
		case len(served) == 0:
			msg += ", but it has no route it may use, so it can use no model"
		default:
			msg += ", but its routes serve none of spec.models, so it can use no model"
		}
		t.set(obj, gen, weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, msg)
		// In the order the data plane checks them, so the reason is the
		// refusal a client gets.
		switch {
		case k.Spec.Blocked:
			t.set(obj, gen, weirv1a1.ConditionReady, false, weirv1a1.ReasonBlocked, "spec.blocked is true: every request with the key is refused (403)")
		case k.Spec.ExpiresAt != nil && !t.in.Now.Before(k.Spec.ExpiresAt.Time):
			t.set(obj, gen, weirv1a1.ConditionReady, false, weirv1a1.ReasonExpired, "the key expired at "+k.Spec.ExpiresAt.UTC().Format(time.RFC3339)+": requests with it are refused (401)")
		case blockedTeams[k.Spec.Team] != "":
			t.set(obj, gen, weirv1a1.ConditionReady, false, weirv1a1.ReasonBlocked, fmt.Sprintf("team %s is blocked by Budget %s: every request with the key is refused (403)", k.Spec.Team, blockedTeams[k.Spec.Team]))
		}
		id := ""
		if isLimitsID(string(k.UID)) {
			id = string(k.UID)
		}
		kc := config.KeyConfig{
			Alias: k.Namespace + "/" + k.Name, LimitsID: id,
			Models: models, Aliases: maps.Clone(k.Spec.Aliases),
			Blocked: k.Spec.Blocked, UserID: k.Spec.User, TeamID: k.Spec.Team, OrgID: k.Spec.Organization,
			Metadata: maps.Clone(k.Spec.Metadata), Tags: slices.Clone(k.Spec.Tags),
			LimitsConfig: lim, ModelLimits: ml,
		}
		for i, h := range hashes {
			owner[h] = k
			c := kc
			c.Hash, c.ExpiresAt = h, expiries[i]
			cfg.Auth.Keys = append(cfg.Auth.Keys, c)
			owners = append(owners, obj)
		}
	}
	t.dropInvalidKeys(cfg, owners)
}

// dropInvalidKeys leaves out the keys the data plane would refuse. CEL
// refuses all of it at admission, so the whole config is checked once
// and, only if it fails, each key alone: an object stored before a rule
// existed must not make the config invalid for everyone.
func (t *translator) dropInvalidKeys(cfg *config.Config, owners []Object) {
	if (&config.Config{Version: config.Version, Auth: config.Auth{Keys: cfg.Auth.Keys}}).Validate() == nil {
		return
	}
	bad := map[Object]bool{}
	for i, k := range cfg.Auth.Keys {
		if bad[owners[i]] {
			continue
		}
		if err := (&config.Config{Version: config.Version, Auth: config.Auth{Keys: []config.KeyConfig{k}}}).Validate(); err != nil {
			bad[owners[i]] = true
			t.replace(owners[i], weirv1a1.ConditionAccepted, weirv1a1.ReasonInvalid, err.Error())
		}
	}
	keep := cfg.Auth.Keys[:0]
	for i, k := range cfg.Auth.Keys {
		if !bad[owners[i]] {
			keep = append(keep, k)
		}
	}
	cfg.Auth.Keys = keep
}

func firstOwner(owner map[string]*weirv1a1.VirtualKey, hashes []string) *weirv1a1.VirtualKey {
	for _, h := range hashes {
		if o := owner[h]; o != nil {
			return o
		}
	}
	return nil
}

func specExpiry(k *weirv1a1.VirtualKey) *time.Time {
	if k.Spec.ExpiresAt == nil {
		return nil
	}
	e := k.Spec.ExpiresAt.UTC()
	return &e
}

// allows reports whether keys in namespace ns may use r.
func allows(r *weirv1a1.AIRoute, ns string) bool {
	return r.Namespace == ns || slices.Contains(r.Spec.AllowedNamespaces, "*") || slices.Contains(r.Spec.AllowedNamespaces, ns)
}
