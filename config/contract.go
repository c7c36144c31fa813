package config

// The names below are shared by the extproc and the Envoy config generator.
// Changing one is a protocol change between them.

const (
	// HeaderBackend carries the backend chosen by the router-level filter.
	// Envoy's route table matches it to pick the cluster. It also says
	// which backend the request's headers are prepared for: upstream
	// attempts share one header map in Envoy (upstream_request.cc
	// acceptHeadersFromRouter), so the upstream filter is skipped exactly
	// when this equals the attempt's backend.
	HeaderBackend = "x-weir-backend"
	// HeaderRequestID is the request id Weir reports to clients.
	HeaderRequestID = "x-request-id"
	// InternalHeaderPrefix marks headers only Weir may set. The HCM's
	// early_header_mutation strips every one a client sends before the
	// route is picked.
	InternalHeaderPrefix = "x-weir-"

	// FilterLevelHeader is gRPC initial metadata on the ext_proc stream that
	// says which of the two filters opened it.
	FilterLevelHeader = "x-weir-filter-level"
	// FilterLevelRouter is the filter in the listener's HTTP filter chain.
	FilterLevelRouter = "router"
	// FilterLevelUpstream is the filter in the cluster's upstream filters,
	// run once per upstream attempt.
	FilterLevelUpstream = "upstream"

	// MetadataNamespace is the dynamic metadata namespace the router-level
	// filter writes and the upstream-level filter reads, and the endpoint
	// metadata namespace naming each host's backend.
	MetadataNamespace = "weir.dev"
	// Keys inside MetadataNamespace.
	MetaBackend   = "backend"
	MetaModel     = "model"
	MetaEndpoint  = "endpoint"
	MetaRequestID = "request_id"
	// MetaHeaders lists, comma-separated, the header names the router-level
	// reply set for MetaBackend, so an attempt re-translated for another
	// backend can remove them from the shared header map.
	MetaHeaders = "headers"
	// MetaStream is "true" when the client asked for a stream, and
	// MetaClientModel the model as the client sent it: the router already
	// parsed both, so the upstream level need not scan the body again.
	MetaStream      = "stream"
	MetaClientModel = "client_model"

	// DefaultExtProcAddress is where the extproc listens, and Envoy's
	// config points, when neither is told otherwise: a unix socket, since
	// the extproc hands provider credentials to whoever holds a stream.
	DefaultExtProcAddress = "unix:///tmp/weir/extproc.sock"

	// ClusterPrefix prefixes each backend's Envoy cluster name.
	ClusterPrefix = "weir-backend-"
)

// Attribute expressions Envoy evaluates (CEL) and sends to the extproc. The
// extproc looks them up by these exact strings, so they live in one place.
// Each returns a string; a missing value is simply absent from the map.
const (
	// AttrHostBackend is the backend of the upstream host Envoy picked for
	// this attempt, from endpoint metadata. With priority failover it is the
	// only reliable answer to "which backend is this attempt for".
	AttrHostBackend = "xds.upstream_host_metadata.filter_metadata['weir.dev']['backend']"
)

// The router-level filter needs no request attributes: it gets the request
// headers themselves (request_header_mode SEND, see extproc/DESIGN.md).

// RouterResponseAttributes are sent with the response headers so the router
// filter learns which backend answered.
var RouterResponseAttributes = []string{AttrHostBackend}

// UpstreamRequestAttributes ride on the upstream filter's request headers
// message: the backend of the host picked for the attempt.
var UpstreamRequestAttributes = []string{AttrHostBackend}

// ClusterName returns the Envoy cluster of a backend.
func ClusterName(backend string) string { return ClusterPrefix + backend }
