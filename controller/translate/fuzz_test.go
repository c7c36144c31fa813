package translate

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/randfill"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
)

// pool is what random objects are made of: few enough names that objects
// name each other and collide, with values CEL would refuse among them.
var pool = []string{"", "a", "b", "team-a", "A", "x*y", "*", "openai/*", "gpt-*", "gpt-4o", "openai/gpt-4o", "a.b", "-1", "1h", "1mo", "/", "/v1", "key"}

// FuzzTranslate: whatever the objects, including ones CEL would refuse,
// Translate does not panic, gives every object a status and returns a
// config that passes config.Validate.
func FuzzTranslate(f *testing.F) {
	f.Add(int64(-466)) // found a previous hash repeated within a key
	for seed := range int64(256) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		pick := func(c randfill.Continue) string { return pool[c.Intn(len(pool))] }
		fl := randfill.NewWithSeed(seed).NilChance(0.3).NumElements(0, 3).Funcs(
			func(s *string, c randfill.Continue) { *s = pick(c) },
			func(s *weirv1a1.Hostname, c randfill.Continue) { *s = weirv1a1.Hostname(pick(c)) },
			func(s *weirv1a1.USD, c randfill.Continue) {
				*s = weirv1a1.USD([]string{"", "1", "0.5", "-1", "x"}[c.Intn(5)])
			},
			func(s *weirv1a1.BudgetPeriod, c randfill.Continue) { *s = weirv1a1.BudgetPeriod(pick(c)) },
			func(s *weirv1a1.ProviderKind, c randfill.Continue) {
				*s = weirv1a1.ProviderKind([]string{"", "openai", "bedrock"}[c.Intn(3)])
			},
			func(s *weirv1a1.Preset, c randfill.Continue) {
				*s = weirv1a1.Preset([]string{"", "groq", "nope"}[c.Intn(3)])
			},
			func(s *weirv1a1.SubjectKind, c randfill.Continue) {
				*s = weirv1a1.SubjectKind([]string{"User", "Team", "Organization", "Global", ""}[c.Intn(5)])
			},
			func(d *metav1.Duration, c randfill.Continue) { d.Duration = time.Duration(c.Int63n(2e12) - 1e12) },
			func(tm *metav1.Time, c randfill.Continue) {
				tm.Time = testNow.Add(time.Duration(c.Intn(5)-2) * time.Hour)
			},
			func(m *metav1.ObjectMeta, c randfill.Continue) {
				*m = metav1.ObjectMeta{Name: pick(c), Namespace: pick(c), UID: types.UID(pick(c)), Generation: c.Int63n(3),
					CreationTimestamp: metav1.NewTime(testNow.Add(-time.Duration(c.Intn(3)) * time.Hour))}
			},
		)
		in := Input{Base: testBase(), Now: testNow, ClusterDomain: "cluster.local", Issued: map[types.NamespacedName]IssuedKey{}}
		fl.Fill(&in.Routes)
		fl.Fill(&in.Keys)
		fl.Fill(&in.Budgets)
		fl.Fill(&in.Secrets)
		fl.Fill(&in.Services)
		// Hashes from the pool too, so that keys share them, and a key's
		// previous hashes repeat its own; some are not hashes at all.
		hash := func(i int) string {
			if i%7 == 6 {
				return pool[i%len(pool)]
			}
			return testHash(pool[i%len(pool)])
		}
		r := randfill.NewWithSeed(seed)
		for _, k := range in.Keys {
			var n [4]uint8
			r.Fill(&n)
			if n[0]%4 == 3 {
				continue // not issued yet
			}
			in.Issued[types.NamespacedName{Namespace: k.Namespace, Name: k.Name}] = IssuedKey{
				Hash: hash(int(n[1])),
				Previous: []PreviousKey{
					{Hash: hash(int(n[2])), ExpiresAt: testNow.Add(time.Hour)},
					{Hash: hash(int(n[3])), ExpiresAt: testNow.Add(time.Duration(int(n[3])%3-1) * time.Hour)},
				},
			}
		}
		out := Translate(in)
		if err := out.Config.Validate(); err != nil {
			t.Fatalf("seed %d: invalid config: %v", seed, err)
		}
		for _, k := range in.Keys {
			if st := out.Status[Object{KindVirtualKey, k.Namespace, k.Name}]; len(st.Conditions) == 0 {
				t.Fatalf("seed %d: VirtualKey %s/%s has no status", seed, k.Namespace, k.Name)
			}
		}
		for _, r := range in.Routes {
			if st := out.Status[Object{KindAIRoute, r.Namespace, r.Name}]; len(st.Conditions) == 0 {
				t.Fatalf("seed %d: AIRoute %s/%s has no status", seed, r.Namespace, r.Name)
			}
		}
	})
}
