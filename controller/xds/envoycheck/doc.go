// Package envoycheck checks rendered Envoy resources ([xds.Resources])
// against how Envoy 1.37's C++ source actually runs them, as recorded in
// /work/shared/envoy-behaviour-from-source.md (rows W1-W5). The in-process
// harness in test/harness runs every filter's whole request phase before the
// next filter and picks the route late, so it cannot catch these; Check reads
// the protos instead.
//
// [Check] reports every finding joined with errors.Join; each is a *[Finding]
// naming the rule, the resource (listener, route, cluster) and the filter.
//
// Rule 1 (router-extproc-send-headers). An ext_proc in an HCM's http_filters
// whose request_body_mode is not NONE must not set request_header_mode SKIP,
// and no ExtProcPerRoute override in typed_per_filter_config (route, virtual
// host or route configuration) may turn the mode into SKIP headers with a
// body. source/extensions/filters/http/ext_proc/ext_proc.cc
// Filter::decodeHeaders returns Continue when headers are skipped, so the
// router's decodeHeaders (source/common/router/router.cc Filter::decodeHeaders)
// picks the route and may send a direct response before the body reply
// arrives (W1); processor_state.cc
// ProcessorState::processHeaderMutationIfAvailable drops the body reply's
// header mutations because headers_ is null (W2), and clear_route_cache comes
// after the router already ran (W3).
//
// Rule 2 (upstream-extproc-send-headers). An ext_proc among a cluster's
// upstream filters (HttpProtocolOptions.http_filters, or a router's
// upstream_http_filters) whose request_body_mode is not NONE, or whose
// mutation_rules set allow_all_routing, must SEND request headers. With SKIP,
// upstream_request.cc UpstreamRequest::acceptHeadersFromRouter runs the
// upstream filter chain's decodeHeaders at once, and upstream_codec encodes
// the headers before the body reply, whose :path/:authority/credential
// mutations are then dropped (W1, W2, W4).
//
// Rule 3 (metadata-read-before-written). No filter may read dynamic metadata
// (%DYNAMIC_METADATA(ns:...)% or %METADATA(DYNAMIC:ns:...)% in a
// header_mutation filter's request mutations, or in a route's
// request_headers_to_add, which the router evaluates) that an earlier ext_proc
// in the same chain writes (ns in metadata_options.receiving_namespaces.untyped)
// while that ext_proc skips request headers. Such an ext_proc's decodeHeaders
// returns Continue (ext_proc.cc Filter::decodeHeaders), so
// source/extensions/filters/http/header_mutation/header_mutation.cc
// HeaderMutation::decodeHeaders evaluates the formatter before the body reply
// has written the metadata (W4). For a cluster's upstream filters the earlier
// ext_procs also include those of every HCM with a route to that cluster: the
// upstream chain shares the downstream StreamInfo (upstream_request.cc
// UpstreamFilterManager::streamInfo, M11) and starts from the router's
// decodeHeaders.
//
// Rule 4 (upstream-tls-verify). A cluster with an envoy.transport_sockets.tls
// transport socket needs an UpstreamTlsContext whose common_tls_context has a
// validation context (validation_context with trusted_ca (system_root_certs is
// not implemented in Envoy) or
// a CA certificate provider; combined_validation_context; or an SDS
// validation config), and, when an endpoint is not an IP literal, a SAN
// matcher (match_typed_subject_alt_names) or at least an sni.
// source/common/tls/cert_validator/default_validator.cc
// DefaultCertValidator::initializeSslContexts starts from
// verify_mode = SSL_VERIFY_NONE and turns on SSL_VERIFY_PEER only when a CA
// is configured, so without one any certificate is accepted. Note that sni
// alone only sends the name; it verifies nothing unless the cluster also sets
// upstream_http_protocol_options.auto_san_validation.
//
// Rule 5 (early-strip-routing-header). If a route matches on a request header
// named x-weir-* ([config.InternalHeaderPrefix]; [config.HeaderBackend] today),
// every HCM using that route configuration must remove the header (by name or
// by a remove_on_match key matcher covering it) in
// early_header_mutation_extensions. source/common/http/conn_manager_impl.cc
// ActiveStream::decodeHeaders runs the early header mutations and then
// refreshCachedRoute() before any HTTP filter, so an HTTP header_mutation
// filter strips the header too late and a client picks the route (W5).
//
// Route configurations are resolved inline (route_config) or by name from
// res.Routes (rds). An ext_proc or header_mutation wrapped in
// envoy.extensions.common.matching.v3.ExtensionWithMatcher (match_delegate)
// is unwrapped and checked as the inner filter. Filters marked disabled and
// filters whose config comes from ECDS are skipped.
package envoycheck
