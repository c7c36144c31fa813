// Package reconcile holds the controller's reconcilers: the key issuer
// (a VirtualKey's Secret), the gateway (every Weir object and the Secrets
// and Services they name → one config pushed over xDS) and the status
// writer (conditions, including Programmed from the xDS ACKs).
package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/keys"
)

// Issuer gives each VirtualKey its key: it creates the Secret, rotates the
// key when the weir.dev/rotate annotation changes, tidies previous keys
// whose grace period ended, and records the Secret and the rotation times
// in the VirtualKey's status. It writes, so it runs on the leader only.
//
// It writes only the Secret: the status fields that describe it
// (secretName, lastRotatedAt, previousKeyExpiresAt) go out with the status
// writer's one patch per object, read back from the Secret, so issuing a
// key costs one API write, not two (at 10,000 keys the writes are the
// time an apply takes to be served).
type Issuer struct {
	Client client.Client
	// Clock and Generate are injected by tests; nil means time.Now and
	// keys.NewKey.
	Clock    func() time.Time
	Generate keys.Generator
	// Workers is how many VirtualKeys are issued at once; zero means
	// DefaultIssuerWorkers.
	Workers int
}

// DefaultIssuerWorkers issue keys in parallel: each key costs two API
// round trips (create the Secret, patch the status), so one worker
// issued a bulk apply of 10,000 VirtualKeys at the API server's latency,
// one key at a time. Keys are independent, and the workqueue never hands
// the same VirtualKey to two workers.
const DefaultIssuerWorkers = 8

// SetupWithManager registers the issuer. It watches VirtualKeys and the
// Secrets they own, so a deleted or edited Secret is put right.
func (r *Issuer) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("issuer").
		WithOptions(controller.Options{MaxConcurrentReconciles: cmp.Or(r.Workers, DefaultIssuerWorkers)}).
		For(&v1alpha1.VirtualKey{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		Complete(r)
}

// Reconcile issues, rotates or tidies one VirtualKey's key.
func (r *Issuer) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := time.Now
	if r.Clock != nil {
		now = r.Clock
	}
	gen := r.Generate
	if gen == nil {
		gen = keys.NewKey
	}
	vk := &v1alpha1.VirtualKey{}
	if err := r.Client.Get(ctx, req.NamespacedName, vk); err != nil {
		// Deleted: its Secret goes with it (owner reference), and the
		// gateway stops shipping its hash.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !vk.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	var cur *corev1.Secret
	s := &corev1.Secret{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: vk.Namespace, Name: keys.SecretName(vk.Name)}, s); {
	case err == nil:
		cur = s
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, fmt.Errorf("get key secret: %w", err)
	}
	t := now()
	res, err := keys.Desired(vk, cur, t, gen)
	if errors.Is(err, keys.ErrNotOwned) {
		// The status writer reports it (Accepted=False, Conflict) from the
		// gateway's view; nothing to retry until the Secret changes.
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if res.Secret != nil {
		if cur == nil {
			err = r.Client.Create(ctx, res.Secret)
		} else {
			err = r.Client.Update(ctx, res.Secret)
		}
		if err != nil {
			// A conflict means someone changed the Secret since it was read:
			// the requeue reads it again.
			return ctrl.Result{}, fmt.Errorf("write key secret: %w", err)
		}
	}
	if !res.NextExpiry.IsZero() {
		// Come back when a previous key's grace period ends to drop it
		// from the Secret. The data plane refuses it on time regardless:
		// the shipped key carries that expiry.
		return ctrl.Result{RequeueAfter: res.NextExpiry.Sub(t) + time.Second}, nil
	}
	return ctrl.Result{}, nil
}

func timeEq(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
