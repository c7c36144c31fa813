// Package translate turns a cluster's Weir objects (AIRoutes, VirtualKeys,
// Budgets) and the Secrets and Services they name into one extproc
// [config.Config] and a status per object. It is a pure function of its
// [Input]: no client, no clock (Now is an input), the same output for the
// same input. The controller lists the objects, calls [Translate], pushes
// the config and writes the statuses, adding Programmed and the Ready
// summary.
//
// An object Translate cannot use is left out and its conditions say why;
// it never makes the config invalid for everyone else. The rules, each
// tested by one row of TestTranslateRules:
//
// Backend names. Config backend names are cluster-wide DNS labels, and
// Envoy's cluster names: "<namespace>-<route>-<backend>" ('.' becomes
// '-'), cut to 52 characters, then "-" and 10 hex digits of the SHA-256
// of "namespace/route/backend". The hash is always there: the readable
// part is ambiguous ("a-b"/"c" and "a"/"b-c") and may be cut. A name
// depends only on its three parts, so adding objects never renames a
// backend.
//
// Endpoints. A Service endpoint becomes
// http://<service>.<namespace>.svc.<ClusterDomain>:<port><basePath>
// (https with endpoint.tls) once the Service and the port exist, else
// ResolvedRefs=False, ServiceNotFound. An external one becomes
// https://<host>[:<port>]<basePath>. A scheme's default port is left out:
// providers and SigV4 see the host as the Host header. A preset fills
// provider openai and, without an endpoint, the preset's base URL; it is
// applied here and not shipped, since config.Parse on a replica would
// give a backend without a credential the preset's environment variable.
//
// Credentials. secretKeyRef and serviceAccountKeyRef (vertex) become the
// credential's value, aws refs bedrock's static keys, header refs header
// values, each read from a Secret in the route's namespace and trimmed
// (files often end in a newline). A missing Secret, key or an empty value
// is SecretNotFound. endpoint.tls.caCertificateRef is Unsupported: the
// config names a CA file that Envoy reads and nothing provides it yet;
// verifying against the system CAs instead would not be what was asked.
// A backend with any such problem is left out, and so is every model
// left with no backend; the route stays Accepted (its other models are
// served) and the ResolvedRefs message names what went and why.
//
// Model names are cluster-wide, like LiteLLM's model list: the data
// plane resolves a model by its name alone, in one table. So two routes
// may not serve the same name or alias, nor may a pattern ("openai/*")
// cover a name or pattern of another route: that route would take those
// requests, and a key granted the pattern would reach a route it may not
// use. Of two such routes the newer (creationTimestamp, then
// namespace/name) is Accepted=False, Conflict, naming the other route and
// the model, and is left out whole. A route claims every name in its
// spec, even one whose backends are missing, so that a missing Service
// never hands its names to another route.
//
// One listener. The data plane has one listener and one auth mode:
// listener.hostnames is the union of the accepted routes' hostnames, or
// empty (every host) if one of them names none; max_body_bytes is the
// largest accepted route's limit (an unset limit counts as the default);
// auth.mode is "keys" if any accepted route requires a virtual key (the
// default), so a route with requireVirtualKey: false still needs keys
// while another route requires them, and "open" only when every accepted
// route is open. With no accepted route it is "keys".
//
// What the data plane cannot serve yet is Accepted=False, Invalid: a
// pathPrefix other than "/", and on a route that requires keys a model
// pattern a key's model list cannot express (the data plane's key lists
// match exact names, "prefix/*" and "*", so "gpt-*" could never be
// granted whole). Whatever config.Validate would refuse in a route (a
// header name, say) also makes the route Invalid, not the config, and so
// does a backend that Input.CheckBackend, the data plane's provider
// check, refuses (an option its provider does not know).
//
// VirtualKeys. A key may use an AIRoute that exists, is accepted, and is
// in the key's namespace or lists it in allowedNamespaces ("*": all);
// otherwise ResolvedRefs=False, RouteNotFound or NotAllowedByRoute, and
// the key keeps the models of its other routes. Its model list is its
// spec.models intersected with the names, aliases and patterns its
// routes serve (see grant): because the data plane has one model table,
// this is what keeps a key to its routes. An empty spec.models means
// every model of its routes; if nothing remains the list is [""], which
// no request matches (the data plane reads an empty list as every
// model). Each issued key becomes one auth.keys entry for its current
// hash and one per previous hash still in its grace period (expiring at
// the earlier of the grace end and spec.expiresAt), all with limits_id
// the VirtualKey's UID, so a rotation keeps the key's spend and rate
// counters, and key_alias "namespace/name". A key not issued yet is not
// shipped (Ready=False, Pending); two keys with one hash: the newer is
// Conflict. An expired key (Ready=False, Expired), a blocked one or one
// whose team's Budget is blocked (Ready=False, Blocked) is shipped: the
// data plane answers 401 or 403 itself.
//
// Budgets become auth.users, auth.teams, auth.organizations and
// auth.global; of two Budgets for one subject the newer is Conflict. A
// Global Budget cannot carry modelLimits (the data plane has none there).
// USD amounts become float64 dollars.
package translate
