// Package keys issues the key of each VirtualKey: the controller generates
// it, writes it to a Secret the VirtualKey owns (for the app team to mount)
// and ships only its SHA-256 onward. Rotation, asked for with the
// weir.dev/rotate annotation, issues a new key into the same Secret and
// keeps the previous one valid for spec.rotation.gracePeriod.
//
// The Secret is the record of issuance: its annotations say which
// rotation request the current key answers and which previous keys (by
// hash only; their values are gone) stay valid until when. Any controller
// replica can therefore rebuild the key set from the cluster alone, and a
// controller restart never re-issues or forgets a key.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weir-ai/weir/api/v1alpha1"
)

// Names in the Secret.
const (
	// DataKey holds the key itself.
	DataKey = "key"
	// AnnotationRotation is the weir.dev/rotate value the current key was
	// issued for; a different value on the VirtualKey asks for a new key.
	AnnotationRotation = "weir.dev/rotation"
	// AnnotationIssuedAt is when the current key was issued (RFC 3339).
	AnnotationIssuedAt = "weir.dev/issued-at"
	// AnnotationPrevious lists the hashes of replaced keys still in their
	// grace period, with their expiry, as JSON.
	AnnotationPrevious = "weir.dev/previous-keys"
	// LabelVirtualKey names the owning VirtualKey, so the Secrets the
	// controller issued can be listed (and watched) by label.
	LabelVirtualKey = "weir.dev/virtualkey"
	// LabelManagedBy marks the Secret as Weir's.
	LabelManagedBy = "app.kubernetes.io/managed-by"
)

// DefaultGracePeriod applies when spec.rotation is unset; it matches the
// CRD's default for spec.rotation.gracePeriod.
const DefaultGracePeriod = time.Hour

// ErrNotOwned is returned when the Secret the key would go to exists and is
// not this VirtualKey's: the controller never overwrites a Secret it did not
// create, since it may hold someone else's credential.
var ErrNotOwned = errors.New("secret exists and is not owned by this VirtualKey")

// Previous is a replaced key in its grace period.
type Previous struct {
	Hash      string    `json:"hash"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Issued is what a Secret says about its key: the current key's hash and
// the previous keys still valid.
type Issued struct {
	Hash     string
	IssuedAt time.Time
	Previous []Previous
}

// SecretName is the Secret a VirtualKey's key goes to: its name and
// "-key", shortened with a hash when that would pass the 253-character
// limit on Secret names.
func SecretName(vkName string) string {
	const suffix = "-key"
	if len(vkName)+len(suffix) <= 253 {
		return vkName + suffix
	}
	sum := sha256.Sum256([]byte(vkName))
	return vkName[:253-len(suffix)-9] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// Hash is the hex SHA-256 of a key, the form the extproc config holds.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Generator makes a new key.
type Generator func() (string, error)

// Result is what [Desired] decided.
type Result struct {
	// Secret is the Secret to write, or nil when the current one is right.
	Secret *corev1.Secret
	// Issued describes the key after the write.
	Issued Issued
	// Rotated is true when a new key replaced an existing one.
	Rotated bool
	// NextExpiry is the earliest expiry of a previous key, when the Secret
	// must be tidied again (zero when there is none).
	NextExpiry time.Time
}

// Desired works out the Secret of vk given the current one (nil when it
// does not exist): a first key, a rotation, or tidying previous keys
// whose grace period ended. It never changes the key otherwise.
func Desired(vk *v1alpha1.VirtualKey, cur *corev1.Secret, now time.Time, gen Generator) (Result, error) {
	if cur != nil && !ownedBy(cur, vk) {
		return Result{}, fmt.Errorf("%w: %s/%s", ErrNotOwned, cur.Namespace, cur.Name)
	}
	want := vk.Annotations[v1alpha1.RotateAnnotation]
	var issued Issued
	var key string
	if cur != nil {
		key = string(cur.Data[DataKey])
		issued = read(cur)
	}
	prev := live(issued.Previous, now)
	rotated := false
	switch {
	case key == "":
		// A first key, or one whose value someone deleted: its old hash is
		// unknown, so there is nothing to keep in grace.
		k, err := gen()
		if err != nil {
			return Result{}, fmt.Errorf("generate key: %w", err)
		}
		key, issued.IssuedAt = k, now
	case cur.Annotations[AnnotationRotation] != want:
		k, err := gen()
		if err != nil {
			return Result{}, fmt.Errorf("generate key: %w", err)
		}
		if until := now.Add(gracePeriod(vk)); until.After(now) {
			prev = append(prev, Previous{Hash: Hash(key), ExpiresAt: until.UTC().Truncate(time.Second)})
		}
		key, issued.IssuedAt, rotated = k, now, true
	}
	issued.Hash = Hash(key)
	issued.Previous = prev
	res := Result{Issued: issued, Rotated: rotated}
	for _, p := range prev {
		if res.NextExpiry.IsZero() || p.ExpiresAt.Before(res.NextExpiry) {
			res.NextExpiry = p.ExpiresAt
		}
	}
	if s := build(vk, cur, key, want, issued); cur == nil || !same(cur, s) {
		res.Secret = s
	}
	return res, nil
}

// Read returns what a Secret the controller issued says, with the previous
// keys whose grace period ended at now left out; ok is false when it holds
// no key.
func Read(s *corev1.Secret, now time.Time) (Issued, bool) {
	key := string(s.Data[DataKey])
	if key == "" {
		return Issued{}, false
	}
	is := read(s)
	is.Hash = Hash(key)
	is.Previous = live(is.Previous, now)
	return is, true
}

func read(s *corev1.Secret) Issued {
	var is Issued
	if t, err := time.Parse(time.RFC3339, s.Annotations[AnnotationIssuedAt]); err == nil {
		is.IssuedAt = t
	}
	if raw := s.Annotations[AnnotationPrevious]; raw != "" {
		// A hand-edited annotation that no longer parses loses the grace
		// period of the keys it listed: failing closed, since the
		// alternative is keeping keys valid that no record describes.
		_ = json.Unmarshal([]byte(raw), &is.Previous)
	}
	return is
}

func live(ps []Previous, now time.Time) []Previous {
	out := make([]Previous, 0, len(ps))
	for _, p := range ps {
		if p.ExpiresAt.After(now) && len(p.Hash) == 64 {
			out = append(out, p)
		}
	}
	return out
}

func gracePeriod(vk *v1alpha1.VirtualKey) time.Duration {
	if r := vk.Spec.Rotation; r != nil && r.GracePeriod != nil {
		return r.GracePeriod.Duration
	}
	return DefaultGracePeriod
}

func ownedBy(s *corev1.Secret, vk *v1alpha1.VirtualKey) bool {
	for _, o := range s.OwnerReferences {
		if o.UID == vk.UID && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// build returns cur (or a new Secret) with what the controller owns set:
// the key, its annotations, the labels and the owner reference. Labels,
// annotations and data keys others added are kept.
func build(vk *v1alpha1.VirtualKey, cur *corev1.Secret, key, rotation string, is Issued) *corev1.Secret {
	s := &corev1.Secret{}
	if cur != nil {
		s = cur.DeepCopy()
	}
	s.Name, s.Namespace, s.Type = SecretName(vk.Name), vk.Namespace, corev1.SecretTypeOpaque
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[AnnotationRotation] = rotation
	s.Annotations[AnnotationIssuedAt] = is.IssuedAt.UTC().Format(time.RFC3339)
	delete(s.Annotations, AnnotationPrevious)
	if len(is.Previous) > 0 {
		b, _ := json.Marshal(is.Previous) // a slice of plain structs cannot fail
		s.Annotations[AnnotationPrevious] = string(b)
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[LabelVirtualKey], s.Labels[LabelManagedBy] = vk.Name, "weir"
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[DataKey] = []byte(key)
	if !ownedBy(s, vk) {
		yes := true
		s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "VirtualKey",
			Name: vk.Name, UID: vk.UID, Controller: &yes, BlockOwnerDeletion: &yes,
		})
	}
	return s
}

// same reports whether writing want would change cur.
func same(cur, want *corev1.Secret) bool {
	return string(cur.Data[DataKey]) == string(want.Data[DataKey]) &&
		maps.Equal(cur.Annotations, want.Annotations) && maps.Equal(cur.Labels, want.Labels) &&
		len(cur.OwnerReferences) == len(want.OwnerReferences) && cur.Type == want.Type
}

// KeyPrefix starts every Weir virtual key (extproc/vkey.Prefix; a test
// keeps the two equal, since the controller may not import the extproc).
const KeyPrefix = "sk-weir-"

// NewKey is the [Generator] the controller uses: a key in the format the
// admin API issues too, the prefix and 256 bits from crypto/rand in
// base64url.
func NewKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
