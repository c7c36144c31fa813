// Package xdsclient is the extproc's side of config over xDS: an ADS
// client that subscribes to the Weir resource types (config/wire) on the
// controller's xDS server, assembles the config resource and every key
// shard into one config.Config, applies it, and ACKs, or NACKs with the
// error while the previous config keeps serving.
package xdsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/wire"
)

// MaxMessageBytes is the largest DiscoveryResponse accepted. The server
// keeps each under 4 MiB at 2,000 backends and 10,000 keys (gRPC's
// default limit); the headroom is for growth past that scale.
const MaxMessageBytes = 16 << 20

// Backoff bounds between reconnects.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// maxNackMessage caps the error a NACK carries: a config with thousands
// of invalid keys would otherwise send every line to the controller.
const maxNackMessage = 4 << 10

// Options configure [New].
type Options struct {
	// Conn reaches the controller's xDS server; [Dial] makes one.
	Conn grpc.ClientConnInterface
	// NodeID names this replica in the controller's status (the pod
	// name); the node's cluster is always [wire.NodeCluster].
	NodeID string
	// Apply compiles and installs a decoded, prepared config; version
	// identifies it (the two resource types' versions). An error is
	// NACKed and must leave the previous config serving.
	Apply func(cfg *config.Config, version string) error
	// Logger; nil means slog.Default.
	Logger *slog.Logger
}

// Dial connects to addr (host:port) with TLS, or plaintext when tlsConf
// is nil, with the receive limit raised to [MaxMessageBytes].
func Dial(addr string, tlsConf *tls.Config) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tlsConf != nil {
		creds = credentials.NewTLS(tlsConf)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("xds client for %s: %w", addr, err)
	}
	return conn, nil
}

// Client keeps one ADS stream open, reconnecting with backoff.
type Client struct {
	o      Options
	log    *slog.Logger
	synced chan struct{}

	// Owned by Run's goroutine.
	//
	// received is every resource as the server last sent it, refused or
	// not: a state-of-the-world server sends these types only when they
	// change, so a shard dropped after a NACK would never come back, and
	// the next push would find the set incomplete. A NACK refuses the
	// assembled config, which is then simply not applied.
	received wire.Set
	applied  *wire.Set // the set last applied, nil before
	// refused is the last set that failed to decode or apply, with its
	// error, so the same set received again is refused without work.
	refused    *wire.Set
	refusedErr error
	versions   map[string]string                         // last ACKed version per type
	last       map[string]*discoveryv3.DiscoveryResponse // last received per type
}

// New returns a client; call [Client.Run].
func New(o Options) *Client {
	l := o.Logger
	if l == nil {
		l = slog.Default()
	}
	return &Client{o: o, log: l, synced: make(chan struct{}), versions: map[string]string{}, last: map[string]*discoveryv3.DiscoveryResponse{}}
}

// Synced is closed once the first complete config (the config resource
// and every key shard) has been applied.
func (c *Client) Synced() <-chan struct{} { return c.synced }

// Run streams until ctx ends. A broken stream is reopened after a backoff
// that doubles up to 30s and resets once a stream delivers a response;
// the last applied config keeps serving meanwhile.
func (c *Client) Run(ctx context.Context) {
	backoff := minBackoff
	for {
		got, err := c.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = minBackoff
		}
		c.log.Warn("xds: stream to the controller ended; reconnecting", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// stream runs one ADS stream; got reports whether it received anything.
func (c *Client) stream(ctx context.Context) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.o.Conn).StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	// Nonces are per stream; one from the last stream must not be ACKed
	// on this one.
	clear(c.last)
	node := &corev3.Node{Id: c.o.NodeID, Cluster: wire.NodeCluster, UserAgentName: "weir-extproc"}
	// Wildcard subscriptions, carrying the versions held, so the server
	// knows what this replica already has.
	for i, typ := range []string{wire.ConfigType, wire.KeyShardType} {
		r := &discoveryv3.DiscoveryRequest{TypeUrl: typ, VersionInfo: c.versions[typ]}
		if i == 0 {
			r.Node = node
		}
		if err := s.Send(r); err != nil {
			return false, err
		}
	}
	for {
		r, err := s.Recv()
		if err != nil {
			return got, err
		}
		got = true
		for _, req := range c.handle(r) {
			if err := s.Send(req); err != nil {
				return got, err
			}
		}
	}
}

// handle applies a response when it completes the config, and returns
// the ACK or NACK to send.
//
// When an apply succeeds, the other type's last response is ACKed too if
// it was NACKed: it is now in use (a config refused with some keys may
// apply with the next shards, which the server sends alone), and the
// server would otherwise show that replica refusing it forever.
func (c *Client) handle(r *discoveryv3.DiscoveryResponse) []*discoveryv3.DiscoveryRequest {
	typ := r.GetTypeUrl()
	c.last[typ] = r
	before := c.applied
	req := c.answer(r)
	out := []*discoveryv3.DiscoveryRequest{req}
	if c.applied == before || req.GetErrorDetail() != nil {
		return out
	}
	for other, o := range c.last {
		if other != typ && c.versions[other] != o.GetVersionInfo() {
			c.versions[other] = o.GetVersionInfo()
			out = append(out, &discoveryv3.DiscoveryRequest{TypeUrl: other, VersionInfo: o.GetVersionInfo(), ResponseNonce: o.GetNonce()})
		}
	}
	return out
}

func (c *Client) answer(r *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	typ := r.GetTypeUrl()
	next, err := c.merge(r)
	if err == nil {
		c.received = *next
		err = c.applyIfComplete(next, typ, r.GetVersionInfo())
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > maxNackMessage {
			// Cut on a rune boundary: a proto string must be UTF-8, or
			// the NACK would not marshal.
			msg = strings.ToValidUTF8(msg[:maxNackMessage], "") + "…"
		}
		c.log.Error("xds: refused config from the controller; the previous config keeps serving", "type", typ, "version", r.GetVersionInfo(), "error", msg)
		// A NACK names the last version ACKed; before any, the refused
		// one, because go-control-plane's linear cache answers a request
		// with an empty version by sending everything again, which
		// would be refused again, in a loop.
		v := c.versions[typ]
		if v == "" {
			v = r.GetVersionInfo()
		}
		return &discoveryv3.DiscoveryRequest{
			TypeUrl: typ, VersionInfo: v, ResponseNonce: r.GetNonce(),
			ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: msg},
		}
	}
	c.versions[typ] = r.GetVersionInfo()
	return &discoveryv3.DiscoveryRequest{TypeUrl: typ, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}
}

// merge returns the received resources updated with r's. State-of-the-
// world responses of these types carry only the resources that changed.
func (c *Client) merge(r *discoveryv3.DiscoveryResponse) (*wire.Set, error) {
	next := c.received // arrays copy; the byte slices are never modified
	for _, a := range r.GetResources() {
		if a.GetTypeUrl() != r.GetTypeUrl() {
			return nil, fmt.Errorf("%w: resource of type %q in a %q response", config.ErrInvalid, a.GetTypeUrl(), r.GetTypeUrl())
		}
		b, err := wire.Unpack(a)
		if err != nil {
			return nil, err
		}
		switch r.GetTypeUrl() {
		case wire.ConfigType:
			next.Config = b
		case wire.KeyShardType:
			n, _, err := wire.DecodeShard(b)
			if err != nil {
				return nil, err
			}
			next.Shards[n] = b
		}
	}
	return &next, nil
}

func (c *Client) applyIfComplete(next *wire.Set, typ, version string) error {
	if next.Config == nil {
		return nil
	}
	for _, s := range next.Shards {
		if s == nil {
			return nil
		}
	}
	if c.applied != nil && sameSet(c.applied, next) {
		return nil
	}
	if c.refused != nil && sameSet(c.refused, next) {
		// Compiling it again would fail again.
		return c.refusedErr
	}
	cfg, err := wire.Decode(next)
	if err != nil {
		c.refused, c.refusedErr = next, err
		return err
	}
	versions := map[string]string{wire.ConfigType: c.versions[wire.ConfigType], wire.KeyShardType: c.versions[wire.KeyShardType]}
	versions[typ] = version
	v := versions[wire.ConfigType] + "/" + versions[wire.KeyShardType]
	if c.o.Apply == nil {
		return errors.New("xds client has no Apply")
	}
	if err := c.o.Apply(cfg, v); err != nil {
		c.refused, c.refusedErr = next, err
		return err
	}
	c.refused, c.refusedErr = nil, nil
	c.applied = next
	c.log.Info("xds: applied config from the controller", "version", v, "keys", len(cfg.Auth.Keys))
	select {
	case <-c.synced:
	default:
		close(c.synced)
	}
	return nil
}

func sameSet(a, b *wire.Set) bool {
	if !bytes.Equal(a.Config, b.Config) {
		return false
	}
	for i := range a.Shards {
		if !bytes.Equal(a.Shards[i], b.Shards[i]) {
			return false
		}
	}
	return true
}
