package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Validate checks the config's syntax and internal references. Each problem
// names its field path (for example "backends[1].base_url") so a user can
// find it. It does not know which providers exist: the extproc checks that
// against its registry when it compiles the config.
func (c *Config) Validate() error {
	var v validator
	if c.Version != Version {
		v.addf("version", "must be %q, got %q", Version, c.Version)
	}
	c.Auth.validate(&v)
	c.Limits.validate(&v)
	c.validateResponses(&v)
	if c.Listener.MaxBodyBytes < 0 {
		v.addf("listener.max_body_bytes", "must not be negative")
	}
	hosts := map[string]bool{}
	for i, h := range c.Listener.Hostnames {
		p := fmt.Sprintf("listener.hostnames[%d]", i)
		// Lower case only: Envoy matches domains case-insensitively, so an
		// upper-case entry would only be a duplicate in disguise.
		if !isDNSName(strings.TrimPrefix(h, "*.")) || strings.ToLower(h) != h {
			v.addf(p, "%q must be a lower-case DNS name, optionally with a leading \"*.\"", h)
		} else if hosts[h] {
			v.addf(p, "duplicate %q", h)
		}
		hosts[h] = true
	}
	if c.Spend.QueueMax < 0 {
		v.addf("spend.queue_max", "must not be negative")
	}
	backends := make(map[string]bool, len(c.Backends))
	for i := range c.Backends {
		b := &c.Backends[i]
		p := fmt.Sprintf("backends[%d]", i)
		switch {
		case b.Name == "":
			v.addf(p+".name", "required")
		case !isDNSLabel(b.Name):
			v.addf(p+".name", "%q must be a DNS label (lower-case letters, digits and '-', at most 63)", b.Name)
		case backends[b.Name]:
			v.addf(p+".name", "duplicate backend %q", b.Name)
		}
		backends[b.Name] = true
		if b.Provider == "" {
			v.addf(p+".provider", "required")
		}
		if err := checkBaseURL(b.BaseURL); err != nil {
			v.addf(p+".base_url", "%v", err)
		}
		if b.Timeout < 0 {
			v.addf(p+".timeout", "must not be negative")
		}
		if b.TLS != nil {
			b.TLS.validate(&v, p+".tls", b.BaseURL)
		}
		if cr := b.Credential; cr != nil {
			n := 0
			for _, s := range []string{cr.Env, cr.File, string(cr.Value)} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				v.addf(p+".credential", "set exactly one of env, file or value")
			}
		}
		checkHeaderList(&v, p+".forward_headers", b.ForwardHeaders, notForwardable)
		checkHeaderList(&v, p+".expose_headers", b.ExposeHeaders, notExposable)
		for h := range b.Headers {
			if h == "" || strings.ToLower(h) != h || strings.HasPrefix(h, ":") || strings.HasPrefix(h, "x-weir-") {
				v.addf(p+".headers", "header %q must be lower-case, not a pseudo-header and not x-weir-*", h)
			}
		}
	}
	names := make(map[string]string)
	for i := range c.Models {
		m := &c.Models[i]
		p := fmt.Sprintf("models[%d]", i)
		if m.ContextWindow < 0 {
			v.addf(p+".context_window", "must not be negative")
		}
		if m.Name == "" {
			v.addf(p+".name", "required")
		} else if strings.IndexByte(m.Name[:len(m.Name)-1], '*') >= 0 {
			v.addf(p+".name", "%q: '*' is allowed only at the end", m.Name)
		}
		for j, n := range append([]string{m.Name}, m.Aliases...) {
			if n == "" {
				continue
			}
			field := p + ".name"
			if j > 0 {
				field = fmt.Sprintf("%s.aliases[%d]", p, j-1)
				if strings.Contains(n, "*") {
					v.addf(field, "aliases cannot be wildcards")
				}
			}
			if prev, dup := names[n]; dup {
				v.addf(field, "%q is already defined at %s", n, prev)
			}
			names[n] = field
		}
		if len(m.Backends) == 0 {
			v.addf(p+".backends", "at least one backend is required")
		}
		for j, b := range m.Backends {
			if !backends[b] {
				v.addf(fmt.Sprintf("%s.backends[%d]", p, j), "unknown backend %q", b)
			}
		}
	}
	switch c.Logging.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.addf("logging.level", "must be debug, info, warn or error")
	}
	return v.err()
}

type validator struct{ errs []error }

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(v.errs...))
}

func (t *BackendTLS) validate(v *validator, p, baseURL string) {
	if u, err := url.Parse(baseURL); err == nil && u.Scheme != "https" {
		v.addf(p, "only valid with an https base_url")
	}
	if t.CAFile != "" && !filepath.IsAbs(t.CAFile) {
		v.addf(p+".ca_file", "%q must be an absolute path (Envoy reads it)", t.CAFile)
	}
	if t.ServerName != "" && !isDNSName(t.ServerName) {
		v.addf(p+".server_name", "%q must be a DNS name", t.ServerName)
	}
	for i, n := range t.SubjectAltNames {
		if !isDNSName(strings.TrimPrefix(n, "*.")) {
			v.addf(fmt.Sprintf("%s.subject_alt_names[%d]", p, i), "%q must be a DNS name", n)
		}
	}
}

// isDNSName reports whether s is a host name of DNS labels (letters,
// digits and '-'), as SNI and a DNS subject alternative name need.
func isDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func checkBaseURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: host is required", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: must not carry a query, fragment or user info", s)
	}
	return nil
}

func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// notForwardable says why a client header may not be added to a backend's
// forward_headers, or "" if it may.
func notForwardable(h string) string {
	switch h {
	case "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie":
		// Weir's own credential is what the provider must see.
		return "carries credentials"
	case "accept-encoding":
		// A compressed reply could not be read for usage or translated.
		return "would let the provider compress replies Weir must read"
	}
	if strings.HasPrefix(h, "x-amz-") {
		return "belongs to Weir's SigV4 signature"
	}
	return notCrossing(h)
}

// notExposable says why a provider response header may not be added to a
// backend's expose_headers, or "" if it may.
func notExposable(h string) string {
	if h == "set-cookie" {
		return "would hand the provider account's cookies to clients"
	}
	return notCrossing(h)
}

// notCrossing covers the names neither direction may list: connection and
// framing headers, which Envoy and Weir manage, and the gateway's own.
func notCrossing(h string) string {
	switch h {
	case "host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length":
		return "is a connection or framing header"
	}
	if strings.HasPrefix(h, "x-envoy-") || strings.HasPrefix(h, InternalHeaderPrefix) {
		return "is the gateway's own"
	}
	return ""
}

// checkHeaderList validates a list of header names: lower-case HTTP
// tokens (no pseudo-headers), no duplicates, none that refused names.
func checkHeaderList(v *validator, path string, names []string, refused func(string) string) {
	seen := make(map[string]bool, len(names))
	for i, h := range names {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !headerName.MatchString(h):
			v.addf(p, "%q: want a lower-case header name such as x-tenant-id", h)
		case seen[h]:
			v.addf(p, "%q is listed twice", h)
		default:
			if why := refused(h); why != "" {
				v.addf(p, "%q %s", h, why)
			}
		}
		seen[h] = true
	}
}
