package config

import (
	"fmt"
	"log/slog"
	"time"
)

// Secret is a string that never prints itself. It satisfies [slog.LogValuer]
// and [fmt.Stringer] so that a whole Config can be logged or %v-formatted
// without leaking API keys.
type Secret string

// Redacted is what a non-empty Secret prints as.
const Redacted = "[redacted]"

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// String implements [fmt.Stringer].
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// Reveal returns the secret value. Call it only where the value leaves the
// process for the provider.
func (s Secret) Reveal() string { return string(s) }

// LogValue implements [slog.LogValuer] for a credential: it tells where the
// key comes from, never the key.
func (c *Credential) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("")
	}
	return slog.GroupValue(
		slog.String("env", c.Env),
		slog.String("file", c.File),
		slog.Bool("inline", c.Value != ""),
		slog.Bool("resolved", c.Key != ""),
	)
}

// Duration is a [time.Duration] that reads "30s" or "5m" from YAML.
type Duration time.Duration

// UnmarshalText implements [encoding.TextUnmarshaler].
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements [encoding.TextMarshaler].
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// MarshalJSON redacts: slog's JSON handler, debug dumps and API responses
// serialise structs with encoding/json, and none of them may carry a key.
// Code that must ship a secret reads it with [Secret.Reveal].
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML redacts for the same reason.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
