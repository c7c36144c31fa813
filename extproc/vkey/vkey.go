// Package vkey is Weir's virtual keys: their format, how they are stored
// (a SHA-256 hash, never the key), and the per-key rules that decide whether
// a request may use a model.
//
// Budgets and rate limits of a key are enforced by package limits; this
// package only holds their settings.
package vkey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/weir-ai/weir/extproc/errs"
)

// Prefix starts every Weir virtual key, so that secret scanners and humans
// can recognise one.
const Prefix = "sk-weir-"

// randomBytes is the key's entropy: 256 bits.
const randomBytes = 32

// encodedLen is the length of a key: the prefix and 43 base64url characters.
var encodedLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(randomBytes)

// Sentinels say which rule refused, and name it ([errs.Rule]). Each wraps
// the errs sentinel that gives its HTTP status, so the server needs no
// table of its own.
var (
	ErrMissing         = errs.Refuse(errs.RuleKeyMissing, fmt.Errorf("%w: no API key given; send it as 'Authorization: Bearer sk-weir-...'", errs.ErrUnauthorized))
	ErrUnknown         = errs.Refuse(errs.RuleKeyUnknown, fmt.Errorf("%w: invalid API key", errs.ErrUnauthorized))
	ErrBlocked         = errs.Refuse(errs.RuleKeyBlocked, fmt.Errorf("%w: this key is blocked", errs.ErrForbidden))
	ErrExpired         = errs.Refuse(errs.RuleKeyExpired, fmt.Errorf("%w: this key has expired", errs.ErrForbidden))
	ErrModelNotAllowed = errs.Refuse(errs.RuleKeyModelNotAllowed, fmt.Errorf("%w: this key may not use the model", errs.ErrForbidden))
)

// Secret is a plaintext virtual key. It prints as its display prefix only,
// in fmt, slog and JSON, so a key that reaches a log line by mistake leaks
// nothing that authenticates.
type Secret string

// Generate returns a new key with 256 bits from crypto/rand.
func Generate() (Secret, error) {
	var b [randomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vkey: reading randomness: %w", err)
	}
	return Secret(Prefix + base64.RawURLEncoding.EncodeToString(b[:])), nil
}

// Hash is the SHA-256 of a key: the only form that is stored.
func (s Secret) Hash() Hash { return sha256.Sum256([]byte(s)) }

// Reveal returns the key. Call it only to hand a freshly generated key to
// its owner, once.
func (s Secret) Reveal() string { return string(s) }

// Prefix is the short form shown in listings and logs: "sk-weir-AbCd…".
// Four characters carry 24 bits, enough to tell a user's keys apart and far
// too few to help guess one.
func (s Secret) Prefix() string { return DisplayPrefix(string(s)) }

// DisplayPrefix is [Secret.Prefix] for a key held as a string.
func DisplayPrefix(key string) string {
	n := len(Prefix) + 4
	if !strings.HasPrefix(key, Prefix) || len(key) < n {
		return "…"
	}
	return key[:n] + "…"
}

// String implements [fmt.Stringer] with the display prefix.
func (s Secret) String() string { return s.Prefix() }

// GoString keeps %#v from printing the key.
func (s Secret) GoString() string { return "vkey.Secret(" + s.Prefix() + ")" }

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Prefix()) }

// MarshalJSON redacts; a response that returns a new key builds its body
// with [Secret.Reveal] on purpose.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.Prefix() + `"`), nil }

// FromHeaders returns the key a client presented: Authorization: Bearer
// (OpenAI ingress) or x-api-key (Anthropic ingress). It checks the shape
// only; whether the key exists is for the [Keyring].
func FromHeaders(authorization, apiKey string) (Secret, error) {
	k := apiKey
	if a := strings.TrimSpace(authorization); a != "" {
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
			return "", fmt.Errorf("%w: the Authorization header must be 'Bearer <key>'", ErrUnknown)
		}
		k = strings.TrimSpace(a[7:])
	}
	if k == "" {
		return "", ErrMissing
	}
	// A wrong shape is answered like an unknown key: the message must not
	// help probe the format, and the key is not echoed.
	if len(k) != encodedLen || !strings.HasPrefix(k, Prefix) {
		return "", ErrUnknown
	}
	return Secret(k), nil
}

// Hash is a key's SHA-256.
type Hash [sha256.Size]byte

// ParseHash reads the hex form that configs and the store hold.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("vkey: hash must be %d hex characters", 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

// String is the hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 12 hex characters, for spend records and counters:
// enough to be unique among a deployment's keys, not a credential.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// MarshalText implements [encoding.TextMarshaler] (hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] (hex).
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Equal compares two hashes in constant time, so that the time a check
// takes says nothing about how many bytes matched.
func (h Hash) Equal(o Hash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }
