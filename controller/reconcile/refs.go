package reconcile

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/keys"
)

// Field indexes of AIRoutes by the Secrets and Services they name, so a
// change of a Secret or Service is a gateway pass only when it matters.
// A cluster is full of Secrets and Services Weir never reads (service
// account tokens, Helm release records, every app's Services); without
// the filter each of their changes would translate and push the whole
// config.
const (
	indexSecrets  = "weir.dev/secrets"
	indexServices = "weir.dev/services"
)

// routeSecrets lists the Secrets an AIRoute names, in its namespace.
func routeSecrets(obj client.Object) []string {
	r, ok := obj.(*v1alpha1.AIRoute)
	if !ok {
		return nil
	}
	var out []string
	add := func(ref *v1alpha1.SecretKeyRef) {
		if ref != nil {
			out = append(out, ref.Name)
		}
	}
	for i := range r.Spec.Backends {
		b := &r.Spec.Backends[i]
		if c := b.Credential; c != nil {
			add(c.SecretKeyRef)
			add(c.ServiceAccountKeyRef)
			if a := c.AWS; a != nil {
				add(&a.AccessKeyIDRef)
				add(&a.SecretAccessKeyRef)
				add(a.SessionTokenRef)
			}
		}
		for j := range b.Headers {
			add(b.Headers[j].SecretKeyRef)
		}
	}
	return out
}

// routeServices lists the Services an AIRoute's backends are.
func routeServices(obj client.Object) []string {
	r, ok := obj.(*v1alpha1.AIRoute)
	if !ok {
		return nil
	}
	var out []string
	for i := range r.Spec.Backends {
		if e := r.Spec.Backends[i].Endpoint; e != nil && e.Service != nil {
			out = append(out, e.Service.Name)
		}
	}
	return out
}

// relevant reports whether a Secret or Service is one the translation
// reads: a key's Secret the issuer wrote, or one an AIRoute in its
// namespace names. A lookup that fails counts as relevant: a pass too
// many is harmless, a missed one is a stale config.
func relevant(ctx context.Context, c client.Reader, obj client.Object) bool {
	index := indexServices
	if s, ok := obj.(*corev1.Secret); ok {
		if _, issued := s.Labels[keys.LabelVirtualKey]; issued {
			return true
		}
		index = indexSecrets
	}
	var routes v1alpha1.AIRouteList
	if err := c.List(ctx, &routes, client.InNamespace(obj.GetNamespace()), client.MatchingFields{index: obj.GetName()}); err != nil {
		return true
	}
	return len(routes.Items) > 0
}
