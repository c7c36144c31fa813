// Package xdsserver is the controller's ADS server: one gRPC stream per
// client carries Envoy's listeners, routes and clusters (rendered by
// controller/xds) and, to extproc replicas, the extproc config as Weir
// resource types (config/wire). A [Server.Push] is one version for both;
// the server tracks which version each client ACKed or NACKed, so the
// reconciler can report Programmed conditions from [Server.Clients].
//
// Nothing here knows Kubernetes: the reconciler renders CRDs into a
// config.Config and pushes it.
package xdsserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/wire"
	"github.com/weir-ai/weir/controller/xds"
)

// Client kinds, told apart by node.cluster: [wire.NodeCluster] is an
// extproc replica, anything else an Envoy.
const (
	KindEnvoy   = "envoy"
	KindExtProc = "extproc"
)

// Options configure [New].
type Options struct {
	// Envoy are the deployment facts xds.Build needs; RDS is forced on,
	// so route changes reach Envoy without draining its listener.
	Envoy xds.Options
	// Logger receives the server's and go-control-plane's messages; nil
	// means slog.Default.
	Logger *slog.Logger
	// Clock stamps the server instance into its versions, so that a
	// client reconnecting after a controller restart never mistakes an
	// old "5" for the new one; nil means time.Now.
	Clock func() time.Time
}

// Nack is a version a client refused, with its reason.
type Nack struct {
	Version string
	Message string
}

// Client is one connected ADS stream.
type Client struct {
	// Node is the client's node.id.
	Node string
	// Kind is [KindEnvoy] or [KindExtProc].
	Kind string
	// AckedVersion is the newest pushed version the client has applied
	// for every type it subscribes to; empty until it has one.
	AckedVersion string
	// Nacked is the client's latest refusal, until it ACKs a later
	// response of the refused type; nil if none.
	Nacked *Nack
}

// Server serves ADS. Create it with [New].
type Server struct {
	log    *slog.Logger
	envoy  xds.Options
	prefix string

	snap cachev3.SnapshotCache
	cfg  *cachev3.LinearCache
	keys *cachev3.LinearCache
	xds  serverv3.Server

	// pushMu serializes pushes; the fields below it are the last pushed
	// state, read and written only under it (and mu for the history).
	pushMu    sync.Mutex
	pushes    uint64
	envoyLast map[string][]byte // "type/name" -> deterministic encoding
	set       *wire.Set
	cfgCount  uint64 // UpdateResources calls on cfg, which set its version
	keyCount  uint64

	mu      sync.Mutex
	version string
	history []pushed // newest last, at most maxHistory
	streams map[streamKey]*stream
	changed chan struct{}
}

// pushed is the version each resource type had after one push.
type pushed struct {
	version string
	envoy   string
	cfg     string
	keys    string
}

// maxHistory bounds the pushes a client's ACK is matched against; a
// client more than this many pushes behind shows no AckedVersion.
const maxHistory = 256

// envoyGroup is the one snapshot every Envoy shares.
const envoyGroup = "envoy"

// oneGroup puts every Envoy node in one snapshot group: they all serve
// the same config.
type oneGroup struct{}

func (oneGroup) ID(*corev3.Node) string { return envoyGroup }

// New creates a server with nothing pushed: clients that connect wait for
// the first [Server.Push] (extproc replicas get empty responses).
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	o.Envoy.RDS = true
	// Bad deployment options would fail every push; refuse them now.
	if _, err := xds.Build(&config.Config{Version: config.Version}, o.Envoy); errors.Is(err, xds.ErrInvalidOptions) {
		return nil, err
	}
	s := &Server{
		log:     o.Logger,
		envoy:   o.Envoy,
		prefix:  strconv.FormatInt(o.Clock().UnixNano(), 36),
		streams: map[streamKey]*stream{},
		changed: make(chan struct{}, 1),
	}
	lg := cpLogger{o.Logger}
	s.snap = cachev3.NewSnapshotCache(true, oneGroup{}, lg)
	s.cfg = cachev3.NewLinearCache(wire.ConfigType, cachev3.WithVersionPrefix(s.prefix+"-c"), cachev3.WithLogger(lg))
	s.keys = cachev3.NewLinearCache(wire.KeyShardType, cachev3.WithVersionPrefix(s.prefix+"-k"), cachev3.WithLogger(lg))
	mux := &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return classify(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return classify(r.GetTypeUrl()) },
		Caches:        map[string]cachev3.Cache{envoyGroup: s.snap, wire.ConfigType: s.cfg, wire.KeyShardType: s.keys},
	}
	s.xds = serverv3.NewServer(context.Background(), mux, s.callbacks())
	return s, nil
}

func classify(typeURL string) string {
	switch typeURL {
	case wire.ConfigType, wire.KeyShardType:
		return typeURL
	}
	return envoyGroup
}

// Register serves ADS (state of the world and delta) on g.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
}

// Version is the last pushed version; empty before the first push.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Changed is signalled when a client connects, disconnects, ACKs or
// NACKs. Signals coalesce: one receive may stand for several events, so
// read [Server.Clients] after it.
func (s *Server) Changed() <-chan struct{} { return s.changed }

func (s *Server) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Push renders cfg for Envoy and the extproc replicas and serves it as one
// new version, sending each client only the resources that changed (a
// one-key change sends one key shard). cfg must be valid; it is not
// modified. On error nothing is sent and the previous version stays
// served. Pushing a config equal to the last returns its version.
func (s *Server) Push(ctx context.Context, cfg *config.Config) (string, error) {
	if cfg == nil {
		return "", errors.New("xdsserver: nil config")
	}
	s.pushMu.Lock()
	defer s.pushMu.Unlock()

	// Everything that can fail runs before anything is served.
	res, err := xds.Build(cfg, s.envoy)
	if err != nil {
		return "", fmt.Errorf("render envoy resources: %w", err)
	}
	envoyRes := map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: asResources(res.Listeners),
		resourcev3.RouteType:    asResources(res.Routes),
		resourcev3.ClusterType:  asResources(res.Clusters),
	}
	envoyNow, err := encodeEnvoy(envoyRes, s.envoyLast)
	if err != nil {
		return "", err
	}
	set, err := wire.Encode(cfg)
	if err != nil {
		return "", fmt.Errorf("encode extproc config: %w", err)
	}
	envoyChanged := !mapsEqual(envoyNow, s.envoyLast)
	cfgChanged := s.set == nil || !bytes.Equal(set.Config, s.set.Config)
	changedShards := map[string]types.Resource{}
	_, shards := set.Resources()
	for i := range set.Shards {
		if s.set == nil || !bytes.Equal(set.Shards[i], s.set.Shards[i]) {
			changedShards[wire.ShardName(i)] = shards[wire.ShardName(i)]
		}
	}
	if !envoyChanged && !cfgChanged && len(changedShards) == 0 {
		return s.Version(), nil
	}
	version := s.prefix + "-" + strconv.FormatUint(s.pushes+1, 10)
	var snap *cachev3.Snapshot
	if envoyChanged {
		if snap, err = cachev3.NewSnapshot(version, envoyRes); err != nil {
			return "", fmt.Errorf("envoy snapshot: %w", err)
		}
		if err := snap.Consistent(); err != nil {
			return "", fmt.Errorf("envoy snapshot: %w", err)
		}
	}

	// From here a failure (only the caches' own) may leave part of the
	// push served; the version is spent either way, so the next push
	// never reuses it for other content.
	s.pushes++

	// Envoy first: a cluster added for a new backend exists before an
	// extproc routes to it. (Clients apply independently, so this narrows
	// the window rather than closing it.)
	if snap != nil {
		if err := s.snap.SetSnapshot(ctx, envoyGroup, snap); err != nil {
			return "", fmt.Errorf("set envoy snapshot: %w", err)
		}
		s.envoyLast = envoyNow
	}
	// The shards before the config: a replica applies each response as it
	// comes, so a revoked key is gone before a (larger, slower) config
	// change is applied, never kept alive by it. Keys are valid on their
	// own, whatever config they meet.
	if len(changedShards) > 0 {
		// The cache bumps its version even when notifying fails.
		s.keyCount++
		if err := s.keys.UpdateResources(changedShards, nil); err != nil {
			return "", fmt.Errorf("update key shards: %w", err)
		}
	}
	if cfgChanged {
		cfgRes, _ := set.Resources()
		s.cfgCount++
		if err := s.cfg.UpdateResource(wire.ConfigName, cfgRes[wire.ConfigName]); err != nil {
			return "", fmt.Errorf("update extproc config: %w", err)
		}
	}
	s.set = set

	p := pushed{
		version: version,
		cfg:     s.prefix + "-c" + strconv.FormatUint(s.cfgCount, 10),
		keys:    s.prefix + "-k" + strconv.FormatUint(s.keyCount, 10),
	}
	s.mu.Lock()
	if n := len(s.history); n > 0 {
		p.envoy = s.history[n-1].envoy
	}
	if envoyChanged {
		p.envoy = version
	}
	s.history = append(s.history, p)
	if len(s.history) > maxHistory {
		s.history = slices.Delete(s.history, 0, len(s.history)-maxHistory)
	}
	s.version = version
	s.mu.Unlock()
	s.log.Info("xds: pushed", "version", version, "envoy_changed", envoyChanged, "config_changed", cfgChanged, "key_shards_changed", len(changedShards))
	return version, nil
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// encodeEnvoy returns every resource's deterministic encoding by type and
// name, to tell whether Envoy's resources changed, and validates each
// (ValidateAll, into packed Anys) that differs from last: validating all
// 2,000 clusters took 200ms of every push, and an unchanged resource
// passed before.
func encodeEnvoy(in map[resourcev3.Type][]types.Resource, last map[string][]byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	for typ, rs := range in {
		for _, r := range rs {
			name := cachev3.GetResourceName(r)
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				return nil, fmt.Errorf("envoy %s %q: %w", typ, name, err)
			}
			key := typ + "/" + name
			if !bytes.Equal(b, last[key]) {
				if err := xds.ValidateDeep(r); err != nil {
					return nil, fmt.Errorf("envoy %s %q: %w", typ, name, err)
				}
			}
			out[key] = b
		}
	}
	return out, nil
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
