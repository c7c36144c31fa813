package translate

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	weirv1a1 "github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
)

// routeInfo is what keys need to know of a route.
type routeInfo struct {
	route    *weirv1a1.AIRoute
	accepted bool
	// why the route is not accepted.
	why string
	// served are the names, aliases and patterns of its models in the
	// config.
	served []string
}

// claim is a model name (or pattern) an accepted route serves.
type claim struct {
	name  string
	route *weirv1a1.AIRoute
}

// routes adds the accepted routes' backends and models to cfg, with the
// listener settings they decide, and returns every route by name.
func (t *translator) routes(cfg *config.Config) map[types.NamespacedName]*routeInfo {
	infos := make(map[types.NamespacedName]*routeInfo, len(t.in.Routes))
	exact := map[string]*weirv1a1.AIRoute{}
	var patterns, exacts []claim
	usedNames := map[string]*weirv1a1.AIRoute{}
	var hosts []string
	anyHost, keysRequired, accepted := false, false, 0
	var maxBody int64
	for _, r := range byAge(t.in.Routes, func(r *weirv1a1.AIRoute) *metav1.ObjectMeta { return &r.ObjectMeta }) {
		obj := Object{KindAIRoute, r.Namespace, r.Name}
		info := &routeInfo{route: r}
		infos[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}] = info
		backends, models, refErr := t.resolveRoute(r)
		if refErr == nil {
			t.set(obj, r.Generation, weirv1a1.ConditionResolvedRefs, true, weirv1a1.ReasonResolvedRefs, "every Secret and Service the route names exists")
		} else {
			t.set(obj, r.Generation, weirv1a1.ConditionResolvedRefs, false, refErr.reason, refErr.msg)
		}
		reason, msg := weirv1a1.ReasonInvalid, invalidRoute(r)
		if msg == "" {
			msg = t.validateRoute(r, backends, models)
		}
		if msg == "" {
			reason, msg = weirv1a1.ReasonConflict, conflict(r, exact, patterns, exacts)
		}
		if msg == "" {
			msg = nameTaken(backends, usedNames)
		}
		if msg != "" {
			info.why = reason + ": " + msg
			t.set(obj, r.Generation, weirv1a1.ConditionAccepted, false, reason, msg)
			continue
		}
		t.set(obj, r.Generation, weirv1a1.ConditionAccepted, true, weirv1a1.ReasonAccepted, "the route's models are served")
		// A route claims every name in its spec, served or not, so that
		// a missing Service does not hand its names to a newer route.
		for _, m := range r.Spec.Models {
			for _, n := range append([]string{m.Name}, m.Aliases...) {
				if strings.HasSuffix(n, "*") {
					patterns = append(patterns, claim{n, r})
				} else {
					exact[n] = r
					exacts = append(exacts, claim{n, r})
				}
			}
		}
		for _, b := range backends {
			usedNames[b.Name] = r
		}
		info.accepted = true
		accepted++
		cfg.Backends = append(cfg.Backends, backends...)
		cfg.Models = append(cfg.Models, models...)
		for _, m := range models {
			info.served = append(info.served, m.Name)
			info.served = append(info.served, m.Aliases...)
		}
		if len(r.Spec.Hostnames) == 0 {
			anyHost = true
		}
		for _, h := range r.Spec.Hostnames {
			hosts = append(hosts, string(h))
		}
		if r.Spec.RequireVirtualKey == nil || *r.Spec.RequireVirtualKey {
			keysRequired = true
		}
		body := int64(config.DefaultMaxBodyBytes)
		if r.Spec.MaxBodyBytes != nil {
			body = *r.Spec.MaxBodyBytes
		}
		maxBody = max(maxBody, body)
	}
	// One listener serves every route: it takes every route's hosts (all
	// hosts if one route names none) and the largest body limit, and the
	// data plane has one auth mode, so a route that requires keys makes
	// every route require them. With no route, nothing is open.
	if !anyHost {
		slices.Sort(hosts)
		cfg.Listener.Hostnames = slices.Compact(hosts)
	}
	if accepted > 0 {
		cfg.Listener.MaxBodyBytes = maxBody
	}
	cfg.Auth.Mode = "keys"
	if accepted > 0 && !keysRequired {
		cfg.Auth.Mode = "open"
	}
	return infos
}

// invalidRoute says what of a route the data plane cannot serve, or "".
func invalidRoute(r *weirv1a1.AIRoute) string {
	if p := r.Spec.PathPrefix; p != "" && p != "/" {
		return fmt.Sprintf("pathPrefix %q: the data plane cannot serve a path prefix other than \"/\" yet (it serves the standard API paths and routes by model); remove it", p)
	}
	if r.Spec.RequireVirtualKey != nil && !*r.Spec.RequireVirtualKey {
		return ""
	}
	for _, m := range r.Spec.Models {
		if p, ok := strings.CutSuffix(m.Name, "*"); ok && !expressible(p) {
			return fmt.Sprintf("model %q: a VirtualKey's model list can grant only exact names, patterns ending in \"/*\" and \"*\", so no key could use this pattern whole; use a pattern such as \"openai/*\", list the models, or set requireVirtualKey: false", m.Name)
		}
	}
	return ""
}

// validateRoute checks the route's part of the config as the data plane
// will, so that what CEL could not see (a header name, say) refuses this
// route rather than the whole config.
func (t *translator) validateRoute(r *weirv1a1.AIRoute, backends []config.Backend, models []config.Model) string {
	c := config.Config{Version: config.Version, Backends: backends, Models: models}
	for _, h := range r.Spec.Hostnames {
		c.Listener.Hostnames = append(c.Listener.Hostnames, string(h))
	}
	if err := c.Validate(); err != nil {
		return err.Error()
	}
	if t.in.CheckBackend == nil {
		return ""
	}
	for _, b := range r.Spec.Backends {
		name := t.backendName(r.Namespace, r.Name, b.Name)
		for i := range backends {
			if backends[i].Name != name {
				continue
			}
			if err := t.in.CheckBackend(&backends[i]); err != nil {
				return "backend " + b.Name + ": " + err.Error()
			}
		}
	}
	return ""
}

// conflict reports the first name of r that an older accepted route
// already serves or overlaps with a pattern, or "". The data plane
// resolves a model by its name alone in one table for the whole cluster,
// so two routes cannot share a name, and a pattern cannot cover another
// route's name: that route would silently take those requests, and a key
// granted the pattern would reach a route it may not use.
func conflict(r *weirv1a1.AIRoute, exact map[string]*weirv1a1.AIRoute, patterns, exacts []claim) string {
	found := func(n string, c claim) string {
		if n == c.name {
			return fmt.Sprintf("model %q is already served by AIRoute %s/%s, which is older; model names are cluster-wide, since the data plane resolves a model by name alone", n, c.route.Namespace, c.route.Name)
		}
		return fmt.Sprintf("model %q overlaps %q of AIRoute %s/%s, which is older; model names are cluster-wide, since the data plane resolves a model by name alone", n, c.name, c.route.Namespace, c.route.Name)
	}
	for _, m := range r.Spec.Models {
		for _, n := range append([]string{m.Name}, m.Aliases...) {
			p, pattern := strings.CutSuffix(n, "*")
			if !pattern {
				if o := exact[n]; o != nil {
					return found(n, claim{n, o})
				}
			}
			for _, c := range patterns {
				q := c.name[:len(c.name)-1]
				if pattern && (strings.HasPrefix(p, q) || strings.HasPrefix(q, p)) ||
					!pattern && len(n) > len(q) && strings.HasPrefix(n, q) {
					return found(n, c)
				}
			}
			if pattern {
				for _, c := range exacts {
					if len(c.name) > len(p) && strings.HasPrefix(c.name, p) {
						return found(n, c)
					}
				}
			}
		}
	}
	return ""
}

// nameTaken reports a backend whose config name an older route's backend
// already has: a hash collision, which the 40-bit hash makes unlikely but
// not impossible, or "".
func nameTaken(backends []config.Backend, used map[string]*weirv1a1.AIRoute) string {
	for _, b := range backends {
		if o := used[b.Name]; o != nil {
			return fmt.Sprintf("backend name %s is already that of a backend of AIRoute %s/%s, which is older (the names' hashes collide); rename the backend", b.Name, o.Namespace, o.Name)
		}
	}
	return ""
}

// refError is a reference that does not resolve.
type refError struct{ reason, msg string }

// resolveRoute builds the route's backends and models. A backend whose
// references do not resolve is left out, and so is a model left with no
// backend; the error names them.
func (t *translator) resolveRoute(r *weirv1a1.AIRoute) ([]config.Backend, []config.Model, *refError) {
	var backends []config.Backend
	var problems []string
	var first *refError
	names := make(map[string]string, len(r.Spec.Backends))
	for i := range r.Spec.Backends {
		b := &r.Spec.Backends[i]
		cb, err := t.backend(r, b)
		if err != nil {
			first = cmp.Or(first, err)
			problems = append(problems, "backend "+b.Name+": "+err.msg)
			continue
		}
		names[b.Name] = cb.Name
		backends = append(backends, cb)
	}
	var models []config.Model
	var dropped []string
	for _, m := range r.Spec.Models {
		var bs []string
		for _, b := range m.Backends {
			if n, ok := names[b]; ok {
				bs = append(bs, n)
			}
		}
		if len(bs) == 0 {
			dropped = append(dropped, m.Name)
			continue
		}
		models = append(models, config.Model{
			Name: m.Name, Aliases: slices.Clone(m.Aliases), Backends: bs,
			ProviderModel: m.ProviderModel, OwnedBy: m.OwnedBy,
			ContextWindow: m.ContextWindow, StoredResponses: m.StoredResponses,
		})
	}
	if first == nil {
		return backends, models, nil
	}
	msg := strings.Join(problems, "; ") + "; these backends are left out"
	if len(dropped) > 0 {
		msg += ", and so are the models they alone serve: " + strings.Join(dropped, ", ")
	}
	return backends, models, &refError{first.reason, msg}
}

// backend renders one backend of r.
func (t *translator) backend(r *weirv1a1.AIRoute, b *weirv1a1.Backend) (config.Backend, *refError) {
	ns := r.Namespace
	out := config.Backend{
		Name:           t.backendName(ns, r.Name, b.Name),
		Provider:       config.Provider(b.Provider),
		ForwardHeaders: slices.Clone(b.ForwardHeaders),
		ExposeHeaders:  slices.Clone(b.ExposeHeaders),
		Options:        maps.Clone(b.Options),
	}
	if b.Timeout != nil {
		out.Timeout = config.Duration(b.Timeout.Duration)
	}
	// The preset is applied here and not shipped: config.Parse on a
	// replica would give a backend without a credential the preset's
	// environment variable, unset there, and refuse the whole config.
	preset := string(b.Preset)
	out.Preset = ""
	if preset != "" && out.Provider == "" {
		out.Provider = "openai"
	}
	if e := b.Endpoint; e != nil {
		if e.TLS != nil && e.TLS.CACertificateRef != nil {
			ref := e.TLS.CACertificateRef
			return out, &refError{weirv1a1.ReasonUnsupported, fmt.Sprintf(
				"endpoint.tls.caCertificateRef (ConfigMap %s/%s) is not supported yet: the data plane takes a CA bundle only as a file Envoy reads, which nothing provides; the backend is left out rather than verified against the system CAs", ns, ref.Name)}
		}
		scheme, host, port := "https", "", int32(443)
		switch {
		case e.Service != nil:
			s := t.services[types.NamespacedName{Namespace: ns, Name: e.Service.Name}]
			if s == nil {
				return out, &refError{weirv1a1.ReasonServiceNotFound, fmt.Sprintf("Service %s/%s not found", ns, e.Service.Name)}
			}
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == e.Service.Port }) {
				return out, &refError{weirv1a1.ReasonServiceNotFound, fmt.Sprintf("Service %s/%s has no port %d", ns, e.Service.Name, e.Service.Port)}
			}
			if e.TLS == nil {
				scheme = "http"
			}
			host, port = e.Service.Name+"."+ns+".svc."+t.in.ClusterDomain, e.Service.Port
		case e.External != nil:
			host = e.External.Hostname
			if e.External.Port != 0 {
				port = e.External.Port
			}
		}
		if host != "" {
			out.BaseURL = scheme + "://" + hostPort(scheme, host, port) + strings.TrimRight(e.BasePath, "/")
		}
		if e.TLS != nil && (e.TLS.ServerName != "" || len(e.TLS.SubjectAltNames) > 0) {
			out.TLS = &config.BackendTLS{ServerName: e.TLS.ServerName, SubjectAltNames: slices.Clone(e.TLS.SubjectAltNames)}
		}
	}
	if out.BaseURL == "" && preset != "" {
		out.BaseURL = presetBaseURLs()[preset]
	}
	if out.BaseURL == "" && out.Provider == "vertex" {
		out.BaseURL = config.VertexBaseURL(out.Options["location"])
	}
	if b.AWS != nil && b.AWS.Region != "" {
		out.AWS = &config.AWSAuth{Region: b.AWS.Region}
	}
	if c := b.Credential; c != nil {
		switch {
		case c.SecretKeyRef != nil || c.ServiceAccountKeyRef != nil:
			ref := cmp.Or(c.SecretKeyRef, c.ServiceAccountKeyRef)
			v, err := t.secret(ns, *ref)
			if err != nil {
				return out, err
			}
			out.Credential = &config.Credential{Value: v, Key: v}
		case c.AWS != nil:
			if out.AWS == nil {
				out.AWS = &config.AWSAuth{}
			}
			var err *refError
			if out.AWS.AccessKeyID, err = t.secret(ns, c.AWS.AccessKeyIDRef); err != nil {
				return out, err
			}
			if out.AWS.SecretAccessKey, err = t.secret(ns, c.AWS.SecretAccessKeyRef); err != nil {
				return out, err
			}
			if ref := c.AWS.SessionTokenRef; ref != nil {
				if out.AWS.SessionToken, err = t.secret(ns, *ref); err != nil {
					return out, err
				}
			}
		}
	}
	for _, h := range b.Headers {
		if out.Headers == nil {
			out.Headers = make(map[string]config.Secret, len(b.Headers))
		}
		if h.SecretKeyRef == nil {
			out.Headers[h.Name] = config.Secret(h.Value)
			continue
		}
		v, err := t.secret(ns, *h.SecretKeyRef)
		if err != nil {
			return out, &refError{err.reason, "header " + h.Name + ": " + err.msg}
		}
		out.Headers[h.Name] = v
	}
	return out, nil
}

// secret reads a Secret's key, trimmed: keys are often written from
// files with a trailing newline, which no provider accepts.
func (t *translator) secret(ns string, ref weirv1a1.SecretKeyRef) (config.Secret, *refError) {
	s := t.secrets[types.NamespacedName{Namespace: ns, Name: ref.Name}]
	if s == nil {
		return "", &refError{weirv1a1.ReasonSecretNotFound, fmt.Sprintf("Secret %s/%s not found", ns, ref.Name)}
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		return "", &refError{weirv1a1.ReasonSecretNotFound, fmt.Sprintf("Secret %s/%s has no key %q", ns, ref.Name, ref.Key)}
	}
	if v := strings.TrimSpace(string(v)); v != "" {
		return config.Secret(v), nil
	}
	return "", &refError{weirv1a1.ReasonSecretNotFound, fmt.Sprintf("Secret %s/%s key %q is empty", ns, ref.Name, ref.Key)}
}

// hostPort leaves out the scheme's default port: the host, not
// host:port, is what providers and SigV4 expect in the Host header.
func hostPort(scheme, host string, port int32) string {
	if scheme == "https" && port == 443 || scheme == "http" && port == 80 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// presetBaseURLs are the base URLs of config's preset table. The config
// package fills them only while parsing a file, so they are read once by
// parsing a config that names every preset: the table stays in one place.
var presetBaseURLs = sync.OnceValue(func() map[string]string {
	var y strings.Builder
	y.WriteString("version: " + config.Version + "\nbackends:\n")
	names := config.Presets()
	for i, p := range names {
		fmt.Fprintf(&y, "- {name: p%d, preset: %s, credential: {value: x}}\n", i, p)
	}
	out := make(map[string]string, len(names))
	c, err := config.Parse([]byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		// Then a preset backend without an endpoint has no base URL and
		// its route is refused (validateRoute); a test catches this.
		return out
	}
	for i, p := range names {
		out[p] = c.Backends[i].BaseURL
	}
	return out
})
