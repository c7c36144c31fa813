package reconcile

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/weir-ai/weir/api/v1alpha1"
)

// TestGatewayIgnoresStatusWrites: the status writer's and the issuer's
// status patches (one or more per object, 12,000 objects at the issue's
// scale) must not each trigger a full translation; a spec change, any
// change of a Secret or Service (which have no generation), a create and
// a delete must.
func TestGatewayIgnoresStatusWrites(t *testing.T) {
	meta := func(gen int64) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "x", Namespace: "ns", Generation: gen}
	}
	for _, tc := range []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"virtualkey status only", &v1alpha1.VirtualKey{ObjectMeta: meta(1)}, &v1alpha1.VirtualKey{ObjectMeta: meta(1), Status: v1alpha1.VirtualKeyStatus{SecretName: "x-key"}}, false},
		{"virtualkey spec", &v1alpha1.VirtualKey{ObjectMeta: meta(1)}, &v1alpha1.VirtualKey{ObjectMeta: meta(2)}, true},
		{"airoute status only", &v1alpha1.AIRoute{ObjectMeta: meta(3)}, &v1alpha1.AIRoute{ObjectMeta: meta(3)}, false},
		{"airoute spec", &v1alpha1.AIRoute{ObjectMeta: meta(3)}, &v1alpha1.AIRoute{ObjectMeta: meta(4)}, true},
		{"budget status only", &v1alpha1.Budget{ObjectMeta: meta(1)}, &v1alpha1.Budget{ObjectMeta: meta(1)}, false},
		{"secret data", &corev1.Secret{ObjectMeta: meta(0)}, &corev1.Secret{ObjectMeta: meta(0), Data: map[string][]byte{"k": []byte("v")}}, true},
		{"service", &corev1.Service{ObjectMeta: meta(0)}, &corev1.Service{ObjectMeta: meta(0)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bool
			n := 0
			for _, w := range gatewayWatches() {
				if fmt.Sprintf("%T", w.obj) == fmt.Sprintf("%T", tc.new) {
					n++
					got = w.pred.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new})
					if !w.pred.Create(event.CreateEvent{Object: tc.new}) || !w.pred.Delete(event.DeleteEvent{Object: tc.old}) {
						t.Error("a create or delete was filtered out")
					}
				}
			}
			if n != 1 {
				t.Fatalf("%d watches of %T, want 1", n, tc.new)
			}
			if got != tc.want {
				t.Errorf("update passes = %v, want %v", got, tc.want)
			}
		})
	}
}
