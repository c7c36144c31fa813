package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/keys"
)

// pollEvery is how often a wait re-reads the API server: the controller
// acts on watch events, and a wait is for its outcome, not for a time.
const pollEvery = 20 * time.Millisecond

// poll calls cond until it holds, fails, or ctx ends; the last reason
// cond gave goes into the error.
func poll(ctx context.Context, what string, cond func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// WaitCondition waits until obj (an AIRoute or a VirtualKey) has
// condition typ with status, describing its current generation, and
// returns it.
func (s *Stack) WaitCondition(ctx context.Context, obj client.Object, typ string, status metav1.ConditionStatus) (*metav1.Condition, error) {
	var got *metav1.Condition
	err := poll(ctx, fmt.Sprintf("%T %s/%s %s=%s", obj, obj.GetNamespace(), obj.GetName(), typ, status), func() (bool, error) {
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err
		}
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *v1alpha1.AIRoute:
			conds = o.Status.Conditions
		case *v1alpha1.VirtualKey:
			conds = o.Status.Conditions
		default:
			return false, fmt.Errorf("%T has no Weir conditions", obj)
		}
		c := meta.FindStatusCondition(conds, typ)
		switch {
		case c == nil:
			return false, fmt.Errorf("no %s condition", typ)
		case c.ObservedGeneration != obj.GetGeneration():
			return false, fmt.Errorf("%s describes generation %d of %d", typ, c.ObservedGeneration, obj.GetGeneration())
		case c.Status != status:
			return false, fmt.Errorf("%s=%s %s: %s", typ, c.Status, c.Reason, c.Message)
		}
		got = c
		return true, nil
	})
	return got, err
}

// WaitReady waits until every object is Ready=True: accepted, its
// references resolved, and its config ACKed by every connected Envoy and
// extproc replica.
func (s *Stack) WaitReady(ctx context.Context, objs ...client.Object) error {
	for _, o := range objs {
		if _, err := s.WaitCondition(ctx, o, v1alpha1.ConditionReady, metav1.ConditionTrue); err != nil {
			return err
		}
	}
	return nil
}

// Key waits for the VirtualKey's issued Secret and returns the key in
// it; with notKey, it waits for a key other than that one (a rotation).
func (s *Stack) Key(ctx context.Context, namespace, name, notKey string) (string, error) {
	var key string
	err := poll(ctx, "key of VirtualKey "+namespace+"/"+name, func() (bool, error) {
		sec := &corev1.Secret{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: keys.SecretName(name)}, sec); err != nil {
			return false, err
		}
		key = string(sec.Data[keys.DataKey])
		return key != "" && key != notKey, nil
	})
	return key, err
}
