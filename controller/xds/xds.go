// Package xds renders a Weir [config.Config] into the Envoy resources that
// carry the message shape described in extproc/DESIGN.md: one listener with
// the router-level ext_proc filter, an inline route table that picks a backend
// cluster by the x-weir-backend header, and one cluster per backend whose
// upstream filter chain runs the upstream-level ext_proc once per attempt.
//
// Everything here is a pure function of its inputs so the same output backs
// `weirctl envoy-config`, the xDS server and the in-process Envoy harness in
// test/harness.
package xds

import (
	"errors"
	"fmt"
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weir-ai/weir/config"
)

// Names of the generated resources and filters. The harness looks filters up
// by these names, so they are part of the package's contract.
const (
	// ListenerName is the single listener.
	ListenerName = "weir"
	// RouteConfigName is the inline route configuration of the listener.
	RouteConfigName = "weir"
	// VirtualHostName is the one virtual host, matching every authority.
	VirtualHostName = "weir"
	// UnknownHostName is the virtual host that answers 404 to hosts not
	// in listener.hostnames; it exists only when hostnames are set.
	UnknownHostName = "unknown-host"
	// ExtProcCluster is the cluster of the weir extproc gRPC server.
	ExtProcCluster = "weir-extproc"

	// FilterExtProc is the ext_proc filter name, also the key of its
	// per-route config and of the attributes Struct Envoy sends.
	FilterExtProc = "envoy.filters.http.ext_proc"
	// FilterHeaderMutation is the header_mutation filter name.
	FilterHeaderMutation = "envoy.filters.http.header_mutation"
	// FilterRouter is the terminal router filter.
	FilterRouter = "envoy.filters.http.router"
	// FilterUpstreamCodec is the terminal upstream filter.
	FilterUpstreamCodec = "envoy.filters.http.upstream_codec"
	// HTTPProtocolOptionsKey is the typed_extension_protocol_options key of
	// a cluster's HTTP options, which also hold the upstream filters.
	HTTPProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// Defaults applied by [Options] when a field is zero.
const (
	DefaultListenAddress  = "0.0.0.0"
	DefaultListenPort     = 8080
	DefaultMessageTimeout = 30 * time.Second
	// bufferHeadroom is added to the body limit for the per-connection
	// buffer so that Envoy itself never answers 413 before the extproc can
	// enforce MaxBody with a precise error; Envoy's 413 is only the backstop
	// for bodies far over the limit.
	bufferHeadroom = 1 << 20
	// streamIdleFloor is the shortest downstream stream idle timeout: a
	// reasoning model may think for minutes before its first token.
	streamIdleFloor = 5 * time.Minute
	connectTimeout  = 10 * time.Second
)

// ErrInvalidOptions wraps every error about [Options].
var ErrInvalidOptions = errors.New("invalid xds options")

// Options are the deployment facts the config does not know.
type Options struct {
	// ListenAddress and ListenPort are where Envoy accepts client traffic.
	// Zero values mean 0.0.0.0:8080.
	ListenAddress string
	ListenPort    uint32
	// ExtProcAddress is "host:port" or "unix:///path" of the extproc gRPC
	// server. Required.
	ExtProcAddress string
	// AdminAddress and AdminPort enable Envoy's admin listener in the
	// bootstrap when AdminPort is non-zero.
	AdminAddress string
	AdminPort    uint32
	// MessageTimeout is the ext_proc per-message timeout. Zero means
	// [DefaultMessageTimeout]; Envoy's own 200ms default is far too short
	// for large buffered bodies.
	MessageTimeout time.Duration
	// ExtProcTLS, if set, makes Envoy reach the extproc over mutual TLS.
	ExtProcTLS *ExtProcTLS
	// InsecureExtProc allows a plaintext extproc at a TCP address that is
	// not loopback. The extproc hands out provider credentials, so this is
	// only for networks that are otherwise protected (a service mesh with
	// mTLS, for example).
	InsecureExtProc bool
	// SystemCAFile is the CA bundle that https backends without
	// tls.ca_file are verified against, read by Envoy. Empty means
	// [DefaultSystemCAFile].
	SystemCAFile string
	// RDS makes the listener fetch Routes[0] over ADS instead of embedding
	// it, so route changes reach Envoy without draining the listener. Only
	// for an xDS server; [Bootstrap] ignores it and always inlines.
	RDS bool
}

func (o Options) withDefaults() Options {
	if o.ListenAddress == "" {
		o.ListenAddress = DefaultListenAddress
	}
	if o.ListenPort == 0 {
		o.ListenPort = DefaultListenPort
	}
	if o.MessageTimeout == 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	if o.SystemCAFile == "" {
		o.SystemCAFile = DefaultSystemCAFile
	}
	if o.AdminPort != 0 && o.AdminAddress == "" {
		o.AdminAddress = "127.0.0.1"
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.ExtProcAddress == "" {
		errs = append(errs, errors.New("extproc address is required"))
	} else if a, err := parseAddress(o.ExtProcAddress); err != nil {
		errs = append(errs, fmt.Errorf("extproc address: %w", err))
	} else if o.ExtProcTLS == nil && !o.InsecureExtProc && !a.isLoopback() {
		errs = append(errs, fmt.Errorf("extproc address %q is neither a unix socket nor loopback: set ExtProcTLS (weirctl envoy-config --extproc-tls-*), since the extproc hands out provider credentials, or InsecureExtProc (--extproc-insecure) for a network that is otherwise protected", o.ExtProcAddress))
	}
	if t := o.ExtProcTLS; t != nil && (t.CertFile == "" || t.KeyFile == "" || t.CAFile == "") {
		errs = append(errs, errors.New("extproc TLS needs a client certificate, its key and a CA file"))
	}
	if o.ListenPort > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("listen port %d out of range", o.ListenPort))
	}
	if o.AdminPort > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("admin port %d out of range", o.AdminPort))
	}
	// Envoy accepts message_timeout between 0 and 3600s.
	if o.MessageTimeout < 0 || o.MessageTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("message timeout %s outside (0, 1h]", o.MessageTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}

// Resources are the xDS resources of one config, in a stable order.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
}

// Build renders cfg into Envoy resources. cfg must already be valid (see
// [config.Config.Validate]); Build re-checks only what it depends on.
func Build(cfg *config.Config, opts Options) (*Resources, error) {
	if cfg == nil {
		return nil, errors.New("xds: nil config")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	rc, err := routeConfig(cfg)
	if err != nil {
		return nil, err
	}
	lis, err := listener(cfg, opts, rc)
	if err != nil {
		return nil, err
	}
	clusters := make([]*clusterv3.Cluster, 0, len(cfg.Backends)+1)
	ep, err := extProcCluster(cfg, opts)
	if err != nil {
		return nil, err
	}
	clusters = append(clusters, ep)
	for i := range cfg.Backends {
		c, err := backendCluster(cfg, &cfg.Backends[i], opts)
		if err != nil {
			return nil, fmt.Errorf("backends[%d]: %w", i, err)
		}
		clusters = append(clusters, c)
	}
	return &Resources{
		Listeners: []*listenerv3.Listener{lis},
		Routes:    []*routev3.RouteConfiguration{rc},
		Clusters:  clusters,
	}, nil
}

// bufferLimit is the per-connection buffer limit for the listener and every
// cluster: Envoy's BUFFERED mode holds the whole body within it.
func bufferLimit(cfg *config.Config) uint32 {
	v := cfg.MaxBody() + bufferHeadroom
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}
