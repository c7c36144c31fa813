package envoycheck

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlymutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

// Rule numbers, as in the package documentation.
const (
	RuleDecode          = 0 // a resource could not be decoded or resolved
	RuleRouterExtProc   = 1
	RuleUpstreamExtProc = 2
	RuleMetadataOrder   = 3
	RuleUpstreamTLS     = 4
	RuleEarlyStrip      = 5
)

var ruleNames = map[int]string{
	RuleDecode:          "decode",
	RuleRouterExtProc:   "router-extproc-send-headers",
	RuleUpstreamExtProc: "upstream-extproc-send-headers",
	RuleMetadataOrder:   "metadata-read-before-written",
	RuleUpstreamTLS:     "upstream-tls-verify",
	RuleEarlyStrip:      "early-strip-routing-header",
}

// Finding is one violated rule.
type Finding struct {
	Rule     int
	Resource string // e.g. `listener "weir" filter_chains[0]`, `cluster "x"`
	Filter   string // e.g. `http_filters[1] "envoy.filters.http.ext_proc"`
	Msg      string // what is wrong, why (Envoy source function) and the W row
}

func (f *Finding) Error() string {
	return fmt.Sprintf("rule %d (%s): %s: %s: %s", f.Rule, ruleNames[f.Rule], f.Resource, f.Filter, f.Msg)
}

// Check returns every finding in res joined with errors.Join, or nil.
func Check(res *xds.Resources) error {
	if res == nil {
		return nil
	}
	c := &checker{routes: map[string]*routev3.RouteConfiguration{}, routed: map[string][]writer{}}
	for _, rc := range res.Routes {
		c.routes[rc.GetName()] = rc
	}
	for _, l := range res.Listeners {
		c.listener(l)
	}
	for _, cl := range res.Clusters {
		c.cluster(cl)
	}
	return errors.Join(c.errs...)
}

type checker struct {
	routes map[string]*routev3.RouteConfiguration
	// routed holds, per cluster name, the downstream ext_procs that write
	// metadata without holding the headers on a route to that cluster. The
	// upstream filters share the downstream StreamInfo
	// (upstream_request.cc UpstreamFilterManager::streamInfo, M11) and run
	// when the router's decodeHeaders starts the attempt, so those writes
	// are late for them too. Listeners are checked before clusters.
	routed map[string][]writer
	errs   []error
}

func (c *checker) add(rule int, resource, filter, format string, args ...any) {
	c.errs = append(c.errs, &Finding{Rule: rule, Resource: resource, Filter: filter, Msg: fmt.Sprintf(format, args...)})
}

func fullName(m proto.Message) protoreflect.FullName { return m.ProtoReflect().Descriptor().FullName() }

var (
	nameHCM            = fullName(&hcmv3.HttpConnectionManager{})
	nameExtProc        = fullName(&extprocv3.ExternalProcessor{})
	nameExtProcPer     = fullName(&extprocv3.ExtProcPerRoute{})
	nameHeaderMutation = fullName(&headermutationv3.HeaderMutation{})
	nameRouter         = fullName(&routerv3.Router{})
	nameMatchDelegate  = fullName(&matchingv3.ExtensionWithMatcher{})
	nameEarlyMutation  = fullName(&earlymutationv3.HeaderMutation{})
	nameFilterConfig   = fullName(&routev3.FilterConfig{})
	nameUpstreamTLS    = fullName(&tlsv3.UpstreamTlsContext{})
)

// ---- listeners and HTTP connection managers ----

func (c *checker) listener(l *listenerv3.Listener) {
	chains := l.GetFilterChains()
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(append([]*listenerv3.FilterChain(nil), chains...), d)
	}
	for i, fc := range chains {
		where := fmt.Sprintf("listener %q filter_chains[%d]", l.GetName(), i)
		if i == len(l.GetFilterChains()) {
			where = fmt.Sprintf("listener %q default_filter_chain", l.GetName())
		}
		for j, nf := range fc.GetFilters() {
			a := nf.GetTypedConfig()
			if a == nil || a.MessageName() != nameHCM {
				continue
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := a.UnmarshalTo(hcm); err != nil {
				c.add(RuleDecode, where, fmt.Sprintf("filters[%d] %q", j, nf.GetName()), "decode HttpConnectionManager: %v", err)
				continue
			}
			c.hcm(where+" http_connection_manager", hcm)
		}
	}
}

// filter is one decoded HTTP filter of a chain.
type filter struct {
	label  string // http_filters[i] "name" (inside match_delegate)
	name   string // the HttpFilter name, the key of typed_per_filter_config
	ep     *extprocv3.ExternalProcessor
	hm     *headermutationv3.HeaderMutation
	router *routerv3.Router
}

// decodeChain decodes the filters c reads and skips the rest.
func (c *checker) decodeChain(resource, field string, hf []*hcmv3.HttpFilter) []filter {
	var out []filter
	for i, f := range hf {
		if f.GetDisabled() {
			continue
		}
		label := fmt.Sprintf("%s[%d] %q", field, i, f.GetName())
		a := f.GetTypedConfig()
		for depth := 0; a != nil && a.MessageName() == nameMatchDelegate && depth < 8; depth++ {
			w := &matchingv3.ExtensionWithMatcher{}
			if err := a.UnmarshalTo(w); err != nil {
				c.add(RuleDecode, resource, label, "decode ExtensionWithMatcher: %v", err)
				a = nil
				break
			}
			a = w.GetExtensionConfig().GetTypedConfig()
			label += fmt.Sprintf(" (match_delegate %q)", w.GetExtensionConfig().GetName())
		}
		if a == nil {
			continue
		}
		x := filter{label: label, name: f.GetName()}
		var msg proto.Message
		switch a.MessageName() {
		case nameExtProc:
			x.ep = &extprocv3.ExternalProcessor{}
			msg = x.ep
		case nameHeaderMutation:
			x.hm = &headermutationv3.HeaderMutation{}
			msg = x.hm
		case nameRouter:
			x.router = &routerv3.Router{}
			msg = x.router
		default:
			continue
		}
		if err := a.UnmarshalTo(msg); err != nil {
			c.add(RuleDecode, resource, label, "decode %s: %v", a.MessageName(), err)
			continue
		}
		out = append(out, x)
	}
	return out
}

func (c *checker) hcm(where string, h *hcmv3.HttpConnectionManager) {
	chain := c.decodeChain(where, "http_filters", h.GetHttpFilters())

	var rc *routev3.RouteConfiguration
	switch {
	case h.GetRouteConfig() != nil:
		rc = h.GetRouteConfig()
	case h.GetRds() != nil:
		name := h.GetRds().GetRouteConfigName()
		if rc = c.routes[name]; rc == nil {
			c.add(RuleDecode, where, "rds", "route configuration %q is not in Resources.Routes, so rules 1, 3 and 5 cannot check its routes", name)
		}
	}
	rcName := fmt.Sprintf("route_configuration %q", rc.GetName())

	// Rule 1 and the downstream half of rule 3.
	var writers []writer
	for _, f := range chain {
		switch {
		case f.ep != nil:
			m := f.ep.GetProcessingMode()
			if needsHeaders(m) && !sendsHeaders(m) {
				c.add(RuleRouterExtProc, where, f.label,
					"request_body_mode %s with request_header_mode SKIP: ext_proc.cc Filter::decodeHeaders returns Continue, so the router picks the route (router.cc Filter::decodeHeaders) before the body reply, whose header mutations processor_state.cc processHeaderMutationIfAvailable then drops (headers_ is null) and whose clear_route_cache comes too late (W1-W3); set request_header_mode SEND",
					m.GetRequestBodyMode())
			}
			if rc != nil {
				c.perRouteModes(where, f, rc)
			}
			writers = c.addWriter(writers, f)
		case f.hm != nil:
			c.readers(where, f.label, "request_mutations", hmRequestValues(f.hm), writers)
		case f.router != nil:
			if rc != nil {
				for _, cl := range routeClusters(rc) {
					for _, w := range writers {
						w.label = where + " " + w.label
						c.routed[cl] = append(c.routed[cl], w)
					}
				}
				for _, r := range headersToAdd(rc) {
					c.readers(where, f.label, r.where+" request_headers_to_add (evaluated by router.cc Filter::decodeHeaders → finalizeRequestHeaders)", r.values, writers)
				}
			}
			if up := f.router.GetUpstreamHttpFilters(); len(up) > 0 {
				c.upstreamChain(where+" "+f.label, "upstream_http_filters", up, writers)
			}
		}
	}

	// Rule 5.
	if rc != nil {
		c.earlyStrip(where, rcName, h, rc)
	}
}

// ---- rule 1: per-route overrides ----

// perRouteModes checks the ExtProcPerRoute overrides of f on every route.
// Envoy merges them less to more specific (route configuration, virtual
// host, route) and a processing_mode replaces the filter's whole mode
// (ext_proc.cc Filter::mergePerRouteConfig).
func (c *checker) perRouteModes(where string, f filter, rc *routev3.RouteConfiguration) {
	base := c.perRoute(where, f, rc.GetTypedPerFilterConfig())
	for _, vh := range rc.GetVirtualHosts() {
		vhMode := base
		if m := c.perRoute(where, f, vh.GetTypedPerFilterConfig()); m != nil {
			vhMode = m
		}
		for i, r := range vh.GetRoutes() {
			mode := vhMode
			if m := c.perRoute(where, f, r.GetTypedPerFilterConfig()); m != nil {
				mode = m
			}
			if mode == nil || mode.disabled {
				continue
			}
			if needsHeaders(mode.pm) && !sendsHeaders(mode.pm) {
				c.add(RuleRouterExtProc, fmt.Sprintf("%s route_configuration %q virtual_host %q routes[%d] %q", where, rc.GetName(), vh.GetName(), i, r.GetName()), f.label,
					"ExtProcPerRoute override (from %s) sets request_body_mode %s with request_header_mode SKIP: ext_proc.cc Filter::decodeHeaders returns Continue after Filter::mergePerRouteConfig, so the router runs before the body reply and its header mutations are dropped (W1-W3)",
					mode.from, mode.pm.GetRequestBodyMode())
			}
		}
	}
}

type routeMode struct {
	pm       *extprocv3.ProcessingMode
	disabled bool
	from     string
}

// perRoute returns the override f has in tpfc, or nil when it has none.
func (c *checker) perRoute(where string, f filter, tpfc map[string]*anypb.Any) *routeMode {
	a := tpfc[f.name]
	if a == nil {
		return nil
	}
	if a.MessageName() == nameFilterConfig {
		fc := &routev3.FilterConfig{}
		if err := a.UnmarshalTo(fc); err != nil {
			c.add(RuleDecode, where, f.label, "decode per-route FilterConfig: %v", err)
			return nil
		}
		if fc.GetDisabled() {
			return &routeMode{disabled: true}
		}
		a = fc.GetConfig()
	}
	if a == nil || a.MessageName() != nameExtProcPer {
		return nil
	}
	pr := &extprocv3.ExtProcPerRoute{}
	if err := a.UnmarshalTo(pr); err != nil {
		c.add(RuleDecode, where, f.label, "decode ExtProcPerRoute: %v", err)
		return nil
	}
	if pr.GetDisabled() {
		return &routeMode{disabled: true}
	}
	if pm := pr.GetOverrides().GetProcessingMode(); pm != nil {
		return &routeMode{pm: pm, from: "typed_per_filter_config"}
	}
	return nil
}

// needsHeaders reports whether a request body mode makes Weir's body reply
// carry header mutations, which only apply when the headers are held.
func needsHeaders(m *extprocv3.ProcessingMode) bool {
	return m.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE
}

// sendsHeaders: DEFAULT request_header_mode means SEND (processing_mode.proto).
func sendsHeaders(m *extprocv3.ProcessingMode) bool {
	return m.GetRequestHeaderMode() != extprocv3.ProcessingMode_SKIP
}

// ---- rules 2 and 3: upstream chains ----

func (c *checker) cluster(cl *clusterv3.Cluster) {
	where := fmt.Sprintf("cluster %q", cl.GetName())
	var auto *corev3.UpstreamHttpProtocolOptions
	if a := cl.GetTypedExtensionProtocolOptions()[xds.HTTPProtocolOptionsKey]; a != nil {
		po := &upstreamhttpv3.HttpProtocolOptions{}
		if err := a.UnmarshalTo(po); err != nil {
			c.add(RuleDecode, where, xds.HTTPProtocolOptionsKey, "decode HttpProtocolOptions: %v", err)
		} else {
			auto = po.GetUpstreamHttpProtocolOptions()
			c.upstreamChain(where, "http_filters", po.GetHttpFilters(), c.routed[cl.GetName()])
		}
	}
	c.clusterTLS(where, cl, auto)
}

// upstreamChain checks an upstream filter chain; writers are the
// downstream ext_procs that may route to it (see checker.routed).
func (c *checker) upstreamChain(where, field string, hf []*hcmv3.HttpFilter, writers []writer) {
	chain := c.decodeChain(where, field, hf)
	writers = slices.Clone(writers)
	for _, f := range chain {
		switch {
		case f.ep != nil:
			m := f.ep.GetProcessingMode()
			if !sendsHeaders(m) {
				var why []string
				if needsHeaders(m) {
					why = append(why, fmt.Sprintf("request_body_mode %s", m.GetRequestBodyMode()))
				}
				if allowsRouting(f.ep.GetMutationRules()) {
					why = append(why, "mutation_rules.allow_all_routing (it means to rewrite :authority/host)")
				}
				if len(why) > 0 {
					c.add(RuleUpstreamExtProc, where, f.label,
						"%s with request_header_mode SKIP: ext_proc.cc Filter::decodeHeaders returns Continue, so upstream_request.cc UpstreamRequest::acceptHeadersFromRouter lets header_mutation and upstream_codec encode the headers before the body reply, whose :path/:authority/credential mutations processor_state.cc processHeaderMutationIfAvailable drops (W1, W2, W4); set request_header_mode SEND",
						strings.Join(why, " and "))
				}
			}
			writers = c.addWriter(writers, f)
		case f.hm != nil:
			c.readers(where, f.label, "request_mutations", hmRequestValues(f.hm), writers)
		}
	}
}

func allowsRouting(r *mutationrulesv3.HeaderMutationRules) bool {
	return r.GetAllowAllRouting().GetValue() && !r.GetDisallowAll().GetValue()
}

// ---- rule 3: dynamic metadata read before it is written ----

// writer is an earlier ext_proc that writes metadata without holding the
// request headers.
type writer struct {
	label string
	ns    map[string]bool
}

func (c *checker) addWriter(ws []writer, f filter) []writer {
	if sendsHeaders(f.ep.GetProcessingMode()) {
		return ws
	}
	ns := map[string]bool{}
	for _, n := range f.ep.GetMetadataOptions().GetReceivingNamespaces().GetUntyped() {
		ns[n] = true
	}
	if len(ns) == 0 {
		return ws
	}
	return append(ws, writer{label: f.label, ns: ns})
}

var metadataRef = regexp.MustCompile(`%(?:DYNAMIC_METADATA\(|METADATA\(DYNAMIC:)([^:)%]*)`)

// readers reports each value that reads a namespace an earlier writer fills.
func (c *checker) readers(where, label, field string, values []string, ws []writer) {
	for _, v := range values {
		for _, m := range metadataRef.FindAllStringSubmatch(v, -1) {
			for _, w := range ws {
				if !w.ns[m[1]] {
					continue
				}
				c.add(RuleMetadataOrder, where, label,
					"%s value %q reads dynamic metadata namespace %q, which the earlier %s writes only in its body reply while request_header_mode is SKIP: ext_proc.cc Filter::decodeHeaders returns Continue, so this filter's decodeHeaders (header_mutation.cc HeaderMutation::decodeHeaders, or the router's) formats the value before the metadata exists (W4)",
					field, v, m[1], w.label)
			}
		}
	}
}

func hmRequestValues(h *headermutationv3.HeaderMutation) []string {
	var out []string
	for _, m := range h.GetMutations().GetRequestMutations() {
		if hv := m.GetAppend().GetHeader(); hv != nil {
			out = append(out, headerValue(hv))
		}
	}
	return out
}

func headerValue(hv *corev3.HeaderValue) string {
	if v := hv.GetValue(); v != "" {
		return v
	}
	return string(hv.GetRawValue())
}

type routeValues struct {
	where  string
	values []string
}

// headersToAdd returns the request_headers_to_add of every level of rc.
func headersToAdd(rc *routev3.RouteConfiguration) []routeValues {
	vals := func(hs []*corev3.HeaderValueOption) []string {
		var out []string
		for _, h := range hs {
			out = append(out, headerValue(h.GetHeader()))
		}
		return out
	}
	out := []routeValues{{fmt.Sprintf("route_configuration %q", rc.GetName()), vals(rc.GetRequestHeadersToAdd())}}
	for _, vh := range rc.GetVirtualHosts() {
		out = append(out, routeValues{fmt.Sprintf("route_configuration %q virtual_host %q", rc.GetName(), vh.GetName()), vals(vh.GetRequestHeadersToAdd())})
		for i, r := range vh.GetRoutes() {
			out = append(out, routeValues{fmt.Sprintf("route_configuration %q virtual_host %q routes[%d] %q", rc.GetName(), vh.GetName(), i, r.GetName()), vals(r.GetRequestHeadersToAdd())})
		}
	}
	return out
}

// routeClusters returns the clusters rc's routes name directly or by weight.
func routeClusters(rc *routev3.RouteConfiguration) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			ra := r.GetRoute()
			add(ra.GetCluster())
			for _, wc := range ra.GetWeightedClusters().GetClusters() {
				add(wc.GetName())
			}
		}
	}
	return out
}

// ---- rule 4: upstream TLS ----

func (c *checker) clusterTLS(where string, cl *clusterv3.Cluster, up *corev3.UpstreamHttpProtocolOptions) {
	type sock struct {
		label string
		ts    *corev3.TransportSocket
	}
	var socks []sock
	if ts := cl.GetTransportSocket(); ts != nil {
		socks = append(socks, sock{"transport_socket", ts})
	}
	for i, m := range cl.GetTransportSocketMatches() {
		if ts := m.GetTransportSocket(); ts != nil {
			socks = append(socks, sock{fmt.Sprintf("transport_socket_matches[%d] %q", i, m.GetName()), ts})
		}
	}
	needName := !allIPEndpoints(cl)
	for _, s := range socks {
		a := s.ts.GetTypedConfig()
		if s.ts.GetName() != "envoy.transport_sockets.tls" && (a == nil || a.MessageName() != nameUpstreamTLS) {
			continue
		}
		label := fmt.Sprintf("%s %q", s.label, s.ts.GetName())
		if a == nil || a.MessageName() != nameUpstreamTLS {
			c.add(RuleUpstreamTLS, where, label, "TLS transport socket without an UpstreamTlsContext typed_config")
			continue
		}
		tc := &tlsv3.UpstreamTlsContext{}
		if err := a.UnmarshalTo(tc); err != nil {
			c.add(RuleDecode, where, label, "decode UpstreamTlsContext: %v", err)
			continue
		}
		verifies, sans := validation(tc.GetCommonTlsContext())
		if !verifies {
			c.add(RuleUpstreamTLS, where, label,
				"UpstreamTlsContext has no validation context with a CA (validation_context.trusted_ca, combined_validation_context or an SDS validation config): default_validator.cc DefaultCertValidator::initializeSslContexts keeps verify_mode = SSL_VERIFY_NONE without a CA, so any certificate is accepted and credentials go to whoever answers")
		}
		if needName && !sans && tc.GetSni() == "" && !up.GetAutoSni() {
			c.add(RuleUpstreamTLS, where, label,
				"endpoints are DNS names but the UpstreamTlsContext has neither match_typed_subject_alt_names nor an sni (nor auto_sni): nothing ties the certificate to the provider's name")
		}
	}
}

// validation reports whether ctx verifies the peer's chain and whether it
// has an inline SAN matcher.
func validation(ctx *tlsv3.CommonTlsContext) (verifies, sans bool) {
	hasCA := func(vc *tlsv3.CertificateValidationContext) bool {
		if vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED {
			return false
		}
		// system_root_certs is [#not-implemented-hide:] in Envoy: alone it
		// leaves verify_mode at SSL_VERIFY_NONE.
		return vc.GetTrustedCa() != nil || vc.GetCaCertificateProviderInstance() != nil
	}
	switch v := ctx.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		return hasCA(v.ValidationContext), len(v.ValidationContext.GetMatchTypedSubjectAltNames()) > 0
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		cv := v.CombinedValidationContext
		d := cv.GetDefaultValidationContext()
		ok := hasCA(d) || ((cv.GetValidationContextSdsSecretConfig() != nil || cv.GetValidationContextCertificateProvider() != nil || cv.GetValidationContextCertificateProviderInstance() != nil) &&
			d.GetTrustChainVerification() != tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED)
		return ok, len(d.GetMatchTypedSubjectAltNames()) > 0
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig,
		*tlsv3.CommonTlsContext_ValidationContextCertificateProvider,
		*tlsv3.CommonTlsContext_ValidationContextCertificateProviderInstance:
		return true, false
	}
	return false, false
}

// allIPEndpoints reports whether every endpoint of cl is an IP literal or a
// pipe. A cluster without a load assignment (EDS) counts as names.
func allIPEndpoints(cl *clusterv3.Cluster) bool {
	n := 0
	for _, l := range cl.GetLoadAssignment().GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			n++
			a := e.GetEndpoint().GetAddress()
			if a.GetPipe() != nil {
				continue
			}
			if _, err := netip.ParseAddr(a.GetSocketAddress().GetAddress()); err != nil {
				return false
			}
		}
	}
	return n > 0
}

// ---- rule 5: x-weir-* route headers stripped before routing ----

func (c *checker) earlyStrip(where, rcName string, h *hcmv3.HttpConnectionManager, rc *routev3.RouteConfiguration) {
	matched := map[string]string{} // header -> first route matching on it
	var order []string
	for _, vh := range rc.GetVirtualHosts() {
		for i, r := range vh.GetRoutes() {
			for _, hm := range r.GetMatch().GetHeaders() {
				n := strings.ToLower(hm.GetName())
				if !strings.HasPrefix(n, config.InternalHeaderPrefix) {
					continue
				}
				if _, ok := matched[n]; !ok {
					matched[n] = fmt.Sprintf("%s virtual_host %q routes[%d] %q", rcName, vh.GetName(), i, r.GetName())
					order = append(order, n)
				}
			}
		}
	}
	if len(order) == 0 {
		return
	}
	var removers []func(string) bool
	for i, e := range h.GetEarlyHeaderMutationExtensions() {
		a := e.GetTypedConfig()
		if a == nil || a.MessageName() != nameEarlyMutation {
			continue
		}
		em := &earlymutationv3.HeaderMutation{}
		if err := a.UnmarshalTo(em); err != nil {
			c.add(RuleDecode, where, fmt.Sprintf("early_header_mutation_extensions[%d] %q", i, e.GetName()), "decode early HeaderMutation: %v", err)
			continue
		}
		for _, m := range em.GetMutations() {
			if r := remover(m); r != nil {
				removers = append(removers, r)
			}
		}
	}
	for _, n := range order {
		removed := false
		for _, r := range removers {
			if r(n) {
				removed = true
				break
			}
		}
		if !removed {
			c.add(RuleEarlyStrip, where, "early_header_mutation_extensions",
				"%s matches on request header %q but no early_header_mutation_extensions entry removes it: conn_manager_impl.cc ActiveStream::decodeHeaders calls refreshCachedRoute() from the client's headers before any HTTP filter (an HTTP header_mutation strip is too late), so a client can pick the route (W5); remove it with envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
				matched[n], n)
		}
	}
}

// remover returns a test for the header names m removes, or nil.
func remover(m *mutationrulesv3.HeaderMutation) func(string) bool {
	switch a := m.GetAction().(type) {
	case *mutationrulesv3.HeaderMutation_Remove:
		want := strings.ToLower(a.Remove)
		return func(n string) bool { return n == want }
	case *mutationrulesv3.HeaderMutation_RemoveOnMatch_:
		return stringMatcher(a.RemoveOnMatch.GetKeyMatcher())
	}
	return nil
}

// stringMatcher evaluates the StringMatcher forms that make sense for
// header names; Envoy's header names are lower case.
func stringMatcher(sm *matcherv3.StringMatcher) func(string) bool {
	fold := func(s string) string {
		if sm.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return func(n string) bool { return fold(n) == fold(p.Exact) }
	case *matcherv3.StringMatcher_Prefix:
		return func(n string) bool { return strings.HasPrefix(fold(n), fold(p.Prefix)) }
	case *matcherv3.StringMatcher_Suffix:
		return func(n string) bool { return strings.HasSuffix(fold(n), fold(p.Suffix)) }
	case *matcherv3.StringMatcher_Contains:
		return func(n string) bool { return strings.Contains(fold(n), fold(p.Contains)) }
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return nil
		}
		return re.MatchString
	}
	return nil
}
