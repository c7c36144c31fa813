package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every validation failure, so callers can tell a bad file
// from an I/O error.
var ErrInvalid = errors.New("invalid config")

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default config used by `weir dev`. It
// routes to the built-in fake providers, whose addresses come from
// WEIR_FAKE_*_URL environment variables.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load reads, expands, parses and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(b, os.LookupEnv)
}

// LookupFunc resolves an environment variable, like [os.LookupEnv].
type LookupFunc func(string) (string, bool)

// Parse expands ${VAR} references with lookup, decodes the YAML strictly
// (unknown fields are errors), resolves credentials and validates.
func Parse(b []byte, lookup LookupFunc) (*Config, error) {
	expanded, err := Expand(b, lookup)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := Prepare(&c, lookup); err != nil {
		return nil, err
	}
	return &c, nil
}

// Prepare readies a decoded config for use: it applies presets, validates
// and resolves credentials with lookup. Parse runs it after decoding YAML;
// a config that arrives already decoded (over xDS, see config/wire) runs
// it too, so both paths accept and refuse the same configs.
func Prepare(c *Config, lookup LookupFunc) error {
	if err := c.applyPresets(); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	return c.resolveCredentials(lookup)
}

// Expand replaces ${VAR} and ${VAR:-default} in b. A referenced variable that
// is unset and has no default is an error naming it, so a typo never turns
// into an empty API key. "$$" escapes a literal "$".
func Expand(b []byte, lookup LookupFunc) ([]byte, error) {
	if bytes.IndexByte(b, '$') < 0 {
		return b, nil
	}
	var out bytes.Buffer
	out.Grow(len(b))
	var missing []string
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '$' || i+1 >= len(b) {
			out.WriteByte(c)
			continue
		}
		switch b[i+1] {
		case '$':
			out.WriteByte('$')
			i++
			continue
		case '{':
		default:
			out.WriteByte(c)
			continue
		}
		end := bytes.IndexByte(b[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated ${ at byte %d", ErrInvalid, i)
		}
		ref := string(b[i+2 : i+2+end])
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return nil, fmt.Errorf("%w: bad variable reference ${%s}", ErrInvalid, ref)
		}
		v, ok := lookup(name)
		switch {
		case ok:
			out.WriteString(v)
		case hasDef:
			out.WriteString(def)
		default:
			missing = append(missing, name)
		}
		i += 2 + end
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: environment variable(s) not set: %s", ErrInvalid, strings.Join(missing, ", "))
	}
	return out.Bytes(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (c *Config) resolveCredentials(lookup LookupFunc) error {
	var errs []error
	for i := range c.Backends {
		cr := c.Backends[i].Credential
		if cr == nil {
			continue
		}
		path := fmt.Sprintf("backends[%d].credential", i)
		switch {
		case cr.Env != "":
			v, ok := lookup(cr.Env)
			if !ok || v == "" {
				errs = append(errs, fmt.Errorf("%s.env: environment variable %s is not set", path, cr.Env))
				continue
			}
			cr.Key = Secret(v)
		case cr.File != "":
			b, err := os.ReadFile(cr.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.file: %w", path, err))
				continue
			}
			cr.Key = Secret(strings.TrimSpace(string(b)))
		default:
			cr.Key = cr.Value
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}
