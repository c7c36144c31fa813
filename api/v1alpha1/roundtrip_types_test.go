package v1alpha1_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/randfill"

	v1alpha1 "github.com/weir-ai/weir/api/v1alpha1"
)

// Randomly filled specs and statuses survive DeepCopy and a JSON round
// trip unchanged: a field whose json tag is
// wrong (a missing ",inline", a duplicate name) or that the generated
// deepcopy misses fails here. ObjectMeta is left zero: apimachinery tests
// it.
func TestTypesRoundTrip(t *testing.T) {
	f := randfill.NewWithSeed(1).NilChance(0.2).NumElements(1, 3).Funcs(
		// JSON carries a Go duration string; keep it in a range it
		// round-trips exactly.
		func(d *metav1.Duration, c randfill.Continue) { d.Duration = time.Duration(c.Int63n(1e12)) },
	)
	for i := range 200 {
		for _, obj := range []interface {
			DeepCopyObject() any
		}{
			wrap(fill(f, &v1alpha1.AIRoute{})),
			wrap(fill(f, &v1alpha1.VirtualKey{})),
			wrap(fill(f, &v1alpha1.Budget{})),
		} {
			orig := obj.DeepCopyObject()
			cp := obj.DeepCopyObject()
			if !reflect.DeepEqual(orig, cp) {
				t.Fatalf("run %d: DeepCopy differs", i)
			}
			b, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			back := reflect.New(reflect.TypeOf(orig).Elem()).Interface()
			if err := json.Unmarshal(b, back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(orig, back) {
				t.Fatalf("run %d: JSON round trip of %T changed it:\n%s", i, orig, b)
			}
		}
	}
}

// fill fills an object's spec and status, not its ObjectMeta.
func fill[T any](f *randfill.Filler, obj *T) *T {
	v := reflect.ValueOf(obj).Elem()
	f.Fill(v.FieldByName("Spec").Addr().Interface())
	f.Fill(v.FieldByName("Status").Addr().Interface())
	return obj
}

type deepCopier[T any] struct{ obj interface{ DeepCopy() T } }

func (d deepCopier[T]) DeepCopyObject() any { return d.obj.DeepCopy() }

func wrap[T any](obj interface{ DeepCopy() T }) deepCopier[T] { return deepCopier[T]{obj} }
