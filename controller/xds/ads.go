package xds

import (
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"
)

// ControllerCluster is the static cluster of the controller's xDS server
// in an [ADSBootstrap].
const ControllerCluster = "weir-controller"

// ADSOptions describe an Envoy that takes its config from the controller.
type ADSOptions struct {
	// NodeID and NodeCluster identify the Envoy to the xDS server; empty
	// means "weir-envoy". Every Envoy gets the same resources, so the id
	// only names it in the controller's logs and status messages (the pod
	// name is a good id).
	NodeID, NodeCluster string
	// ControllerAddress is host:port of the controller's xDS server.
	ControllerAddress string
	// ControllerTLS makes Envoy reach the controller over TLS, with a
	// client certificate when the controller requires one
	// (weirctl controller --xds-tls-*).
	ControllerTLS *ExtProcTLS
	// AdminAddress and AdminPort enable Envoy's admin listener when the
	// port is non-zero.
	AdminAddress string
	AdminPort    uint32
}

// ADSBootstrap returns the bootstrap of an Envoy whose listeners, routes
// and clusters (including the extproc's) all come over one ADS stream
// from the controller; only the controller's own cluster is static.
// Listeners fetch their routes over RDS on the same stream ([Options.RDS]),
// so a model or key change never drains a listener.
func ADSBootstrap(o ADSOptions) (*bootstrapv3.Bootstrap, error) {
	if o.NodeID == "" {
		o.NodeID = "weir-envoy"
	}
	if o.NodeCluster == "" {
		o.NodeCluster = "weir-envoy"
	}
	if o.ControllerAddress == "" {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.New("controller address is required"))
	}
	a, err := parseAddress(o.ControllerAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: controller address: %w", ErrInvalidOptions, err)
	}
	po, err := grpcProtocolOptions()
	if err != nil {
		return nil, fmt.Errorf("xds: pack controller protocol options: %w", err)
	}
	ads := &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: o.NodeID, Cluster: o.NodeCluster},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ControllerCluster}},
				}},
				// The node only needs saying once per stream.
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{{
				Name:                          ControllerCluster,
				ClusterDiscoveryType:          a.discovery(clusterv3.Cluster_STRICT_DNS),
				ConnectTimeout:                durationpb.New(connectTimeout),
				LoadAssignment:                loadAssignment(ControllerCluster, a, nil),
				TypedExtensionProtocolOptions: map[string]*anypb.Any{HTTPProtocolOptionsKey: po},
			}},
		},
	}
	if t := o.ControllerTLS; t != nil {
		if t.CAFile == "" {
			return nil, fmt.Errorf("%w: controller TLS needs the CA file its certificate chains to", ErrInvalidOptions)
		}
		if b.StaticResources.Clusters[0].TransportSocket, err = extProcTLS(t, a); err != nil {
			return nil, err
		}
	}
	if o.AdminPort != 0 {
		addr := o.AdminAddress
		if addr == "" {
			addr = "127.0.0.1"
		}
		b.Admin = &bootstrapv3.Admin{Address: socketAddress(addr, o.AdminPort)}
	}
	return b, nil
}

// ADSBootstrapYAML renders [ADSBootstrap] as deterministic YAML.
func ADSBootstrapYAML(o ADSOptions) ([]byte, error) {
	b, err := ADSBootstrap(o)
	if err != nil {
		return nil, err
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("xds: marshal bootstrap: %w", err)
	}
	return yaml.JSONToYAML(j)
}
