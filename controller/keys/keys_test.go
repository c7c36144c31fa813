package keys

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weir-ai/weir/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// counter hands out key-1, key-2, ... so each issuance is identifiable.
func counter() Generator {
	n := 0
	return func() (string, error) { n++; return fmt.Sprintf("sk-weir-test-%d", n), nil }
}

func vk(rotate string, grace *time.Duration) *v1alpha1.VirtualKey {
	v := &v1alpha1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a", UID: types.UID("uid-1")}}
	if rotate != "" {
		v.Annotations = map[string]string{v1alpha1.RotateAnnotation: rotate}
	}
	if grace != nil {
		v.Spec.Rotation = &v1alpha1.Rotation{GracePeriod: &metav1.Duration{Duration: *grace}}
	}
	return v
}

func dur(d time.Duration) *time.Duration { return &d }

// step applies Desired as the reconciler would: the written Secret becomes
// the current one.
type step struct {
	at     time.Duration // after t0
	rotate string        // the VirtualKey's weir.dev/rotate
	grace  *time.Duration
	edit   func(*corev1.Secret) // a change someone else makes first

	wantWrite    bool
	wantKey      string // the Secret's key after the step
	wantRotated  bool
	wantPrevious []string // hashes of keys still in grace, by key value
	wantErr      error
}

func TestDesired(t *testing.T) {
	tests := []struct {
		name  string
		start *corev1.Secret
		steps []step
	}{
		{"first key, then nothing to do", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{at: time.Hour, wantKey: "sk-weir-test-1"},
		}},
		{"rotation keeps the old key for the default hour", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{at: time.Minute, rotate: "r1", wantWrite: true, wantKey: "sk-weir-test-2", wantRotated: true, wantPrevious: []string{"sk-weir-test-1"}},
			{at: 30 * time.Minute, rotate: "r1", wantKey: "sk-weir-test-2", wantPrevious: []string{"sk-weir-test-1"}},
			// The grace period ended at 61m: tidied away.
			{at: 61 * time.Minute, rotate: "r1", wantWrite: true, wantKey: "sk-weir-test-2"},
		}},
		{"zero grace revokes at once", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{rotate: "r1", grace: dur(0), wantWrite: true, wantKey: "sk-weir-test-2", wantRotated: true},
		}},
		{"two rotations in a row keep both previous keys", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{rotate: "r1", grace: dur(10 * time.Minute), wantWrite: true, wantKey: "sk-weir-test-2", wantRotated: true, wantPrevious: []string{"sk-weir-test-1"}},
			{at: time.Minute, rotate: "r2", grace: dur(10 * time.Minute), wantWrite: true, wantKey: "sk-weir-test-3", wantRotated: true, wantPrevious: []string{"sk-weir-test-1", "sk-weir-test-2"}},
			{at: 10 * time.Minute, rotate: "r2", grace: dur(10 * time.Minute), wantWrite: true, wantKey: "sk-weir-test-3", wantPrevious: []string{"sk-weir-test-2"}},
		}},
		{"a deleted key value is reissued without grace", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{edit: func(s *corev1.Secret) { delete(s.Data, DataKey) }, wantWrite: true, wantKey: "sk-weir-test-2"},
		}},
		{"others' labels, annotations and data are kept", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{edit: func(s *corev1.Secret) {
				s.Labels["team"] = "a"
				s.Annotations["note"] = "x"
				s.Data["base_url"] = []byte("https://gw")
			}, wantKey: "sk-weir-test-1"},
			{rotate: "r1", wantWrite: true, wantKey: "sk-weir-test-2", wantRotated: true, wantPrevious: []string{"sk-weir-test-1"}},
		}},
		{"a hand-mangled previous list fails closed", nil, []step{
			{wantWrite: true, wantKey: "sk-weir-test-1"},
			{rotate: "r1", wantWrite: true, wantKey: "sk-weir-test-2", wantRotated: true, wantPrevious: []string{"sk-weir-test-1"}},
			{edit: func(s *corev1.Secret) { s.Annotations[AnnotationPrevious] = "{not json" }, rotate: "r1", wantWrite: true, wantKey: "sk-weir-test-2"},
		}},
		{"a Secret someone else owns is never overwritten", &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "app-key", Namespace: "team-a"},
			Data:       map[string][]byte{DataKey: []byte("their-credential")},
		}, []step{{wantErr: ErrNotOwned, wantKey: "their-credential"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := counter()
			cur := tt.start
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				if st.edit != nil {
					st.edit(cur)
				}
				res, err := Desired(vk(st.rotate, st.grace), cur, now, gen)
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d: err %v, want %v", i, err, st.wantErr)
				}
				if (res.Secret != nil) != st.wantWrite {
					t.Fatalf("step %d: write %v, want %v", i, res.Secret != nil, st.wantWrite)
				}
				if res.Secret != nil {
					cur = res.Secret
				}
				if got := string(cur.Data[DataKey]); got != st.wantKey {
					t.Fatalf("step %d: key %q, want %q", i, got, st.wantKey)
				}
				if err != nil {
					continue
				}
				if res.Rotated != st.wantRotated {
					t.Errorf("step %d: rotated %v, want %v", i, res.Rotated, st.wantRotated)
				}
				is, ok := Read(cur, now)
				if !ok || is.Hash != Hash(st.wantKey) || res.Issued.Hash != is.Hash {
					t.Fatalf("step %d: Read = %+v %v, Desired said %s; want hash of %s", i, is, ok, res.Issued.Hash, st.wantKey)
				}
				var got []string
				for _, p := range is.Previous {
					got = append(got, p.Hash)
				}
				var want []string
				for _, k := range st.wantPrevious {
					want = append(want, Hash(k))
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("step %d: previous %v, want hashes of %v", i, got, st.wantPrevious)
				}
				if strings.Contains(cur.Annotations[AnnotationPrevious], "sk-weir") {
					t.Errorf("step %d: a previous key's value is in the Secret: %s", i, cur.Annotations[AnnotationPrevious])
				}
				if cur.Labels["team"] == "" && i > 1 && tt.name == "others' labels, annotations and data are kept" {
					t.Errorf("step %d: a label someone else set was dropped", i)
				}
			}
		})
	}
}

func TestSecretName(t *testing.T) {
	long := strings.Repeat("a", 253)
	for _, tt := range []struct{ in, want string }{
		{"app", "app-key"},
		{strings.Repeat("b", 249), strings.Repeat("b", 249) + "-key"},
	} {
		if got := SecretName(tt.in); got != tt.want {
			t.Errorf("SecretName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	a, b := SecretName(long), SecretName(long[:252]+"b")
	if len(a) > 253 || len(b) > 253 || a == b {
		t.Errorf("long names: %d %d, equal %v", len(a), len(b), a == b)
	}
}
