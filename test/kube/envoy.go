package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/test/harness"
	"github.com/weir-ai/weir/test/xdstest"
)

// envoyTypes are what an Envoy of the ADS bootstrap subscribes to; RDS
// by the names its listeners ask for, the others by wildcard.
var envoyTypes = []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.RouteType}

// plane plays one Envoy of the ADS bootstrap: it follows the controller's
// LDS, RDS and CDS and keeps a harness built from the latest complete set.
// Like Envoy it ACKs a listener whose routes have not arrived yet (the
// listener warms) and NACKs a response whose resources it cannot serve,
// keeping the harness it had.
type plane struct {
	cl    *xdstest.Client
	build func(*xds.Resources) (*harness.Harness, error)
	log   *slog.Logger

	mu        sync.Mutex
	listeners []*listenerv3.Listener
	routes    []*routev3.RouteConfiguration
	clusters  []*clusterv3.Cluster
	rdsNames  []string
	cur       *harness.Harness
	old       []*harness.Harness // closed at shutdown: requests may still run on them
	built     chan struct{}      // closed at the first harness
	builtOnce sync.Once
}

func newPlane(cl *xdstest.Client, build func(*xds.Resources) (*harness.Harness, error), log *slog.Logger) *plane {
	return &plane{cl: cl, build: build, log: log}
}

// run subscribes and applies responses until ctx ends.
func (p *plane) run(ctx context.Context) error {
	for _, typ := range []string{resourcev3.ListenerType, resourcev3.ClusterType} {
		if err := p.cl.Subscribe(typ); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, typ := range envoyTypes {
		wg.Go(func() {
			for {
				resp, err := p.cl.Next(ctx, typ)
				if err != nil {
					return
				}
				p.handle(resp)
			}
		})
	}
	wg.Wait()
	return nil
}

// harness is the data plane serving now; nil before the first complete
// config.
func (p *plane) harness() *harness.Harness {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

func (p *plane) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range append(p.old, p.cur) {
		if h != nil {
			_ = h.Close()
		}
	}
	p.old, p.cur = nil, nil
}

func (p *plane) handle(resp *discoveryv3.DiscoveryResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prevL, prevR, prevC := p.listeners, p.routes, p.clusters
	if err := p.decode(resp); err != nil {
		p.nack(resp, err)
		return
	}
	if resp.GetTypeUrl() == resourcev3.ListenerType {
		names, err := rdsNames(p.listeners)
		if err != nil {
			p.listeners = prevL
			p.nack(resp, err)
			return
		}
		if !slices.Equal(names, p.rdsNames) {
			p.rdsNames = names
			if err := p.cl.Subscribe(resourcev3.RouteType, names...); err != nil {
				p.log.Warn("envoy plane: subscribe to routes", "error", err)
			}
		}
	}
	res, complete := p.resources()
	if complete {
		h, err := p.build(res)
		if err != nil {
			p.listeners, p.routes, p.clusters = prevL, prevR, prevC
			p.nack(resp, err)
			return
		}
		if p.cur != nil {
			p.old = append(p.old, p.cur)
		}
		p.cur = h
	}
	if err := p.cl.ACK(resp); err != nil {
		p.log.Warn("envoy plane: ACK", "error", err)
	}
}

func (p *plane) nack(resp *discoveryv3.DiscoveryResponse, err error) {
	p.log.Warn("envoy plane: refusing a response", "type", resp.GetTypeUrl(), "version", resp.GetVersionInfo(), "error", err)
	if err := p.cl.NACK(resp, err.Error()); err != nil {
		p.log.Warn("envoy plane: NACK", "error", err)
	}
}

// decode replaces the state of resp's type: state-of-the-world responses
// carry every resource of the type.
func (p *plane) decode(resp *discoveryv3.DiscoveryResponse) error {
	// A response that does not decode leaves the type's state as it was.
	switch as := resp.GetResources(); resp.GetTypeUrl() {
	case resourcev3.ListenerType:
		return keep(&p.listeners, as, "listener", func() *listenerv3.Listener { return &listenerv3.Listener{} })
	case resourcev3.RouteType:
		return keep(&p.routes, as, "route", func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} })
	case resourcev3.ClusterType:
		return keep(&p.clusters, as, "cluster", func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
	}
	return fmt.Errorf("type %s was not asked for", resp.GetTypeUrl())
}

// keep decodes every resource into a fresh message and, if all decode,
// replaces *dst with them.
func keep[T proto.Message](dst *[]T, as []*anypb.Any, what string, fresh func() T) error {
	out := make([]T, 0, len(as))
	for _, a := range as {
		m := fresh()
		if err := a.UnmarshalTo(m); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, m)
	}
	*dst = out
	return nil
}

// resources is the current set, and whether it is complete: a listener,
// every route it names, and clusters.
func (p *plane) resources() (*xds.Resources, bool) {
	if len(p.listeners) == 0 || len(p.clusters) == 0 {
		return nil, false
	}
	for _, n := range p.rdsNames {
		if !slices.ContainsFunc(p.routes, func(r *routev3.RouteConfiguration) bool { return r.GetName() == n }) {
			return nil, false
		}
	}
	return &xds.Resources{Listeners: p.listeners, Routes: p.routes, Clusters: p.clusters}, true
}

// rdsNames are the route configurations the listeners fetch over RDS,
// sorted.
func rdsNames(ls []*listenerv3.Listener) ([]string, error) {
	var names []string
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig() == nil || !f.GetTypedConfig().MessageIs(hcm) {
					continue
				}
				if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
					return nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
				}
				if r := hcm.GetRds(); r != nil {
					if r.GetRouteConfigName() == "" {
						return nil, errors.New("listener " + l.GetName() + ": rds without a route config name")
					}
					names = append(names, r.GetRouteConfigName())
				}
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
