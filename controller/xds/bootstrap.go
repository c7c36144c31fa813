package xds

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/weir-ai/weir/config"
)

// Bootstrap returns a self-contained Envoy bootstrap whose static_resources
// are [Build]'s output, for running Envoy without an xDS server.
func Bootstrap(cfg *config.Config, opts Options) (*bootstrapv3.Bootstrap, error) {
	opts.RDS = false // static resources cannot reference RDS without ADS
	res, err := Build(cfg, opts)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: "weir", Cluster: "weir"},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: res.Listeners,
			Clusters:  res.Clusters,
		},
	}
	if opts.AdminPort != 0 {
		b.Admin = &bootstrapv3.Admin{Address: socketAddress(opts.AdminAddress, opts.AdminPort)}
	}
	return b, nil
}

// BootstrapYAML renders [Bootstrap] as YAML. The output is deterministic
// (proto field order, sorted map keys), so it can be diffed and
// golden-tested.
func BootstrapYAML(cfg *config.Config, opts Options) ([]byte, error) {
	b, err := Bootstrap(cfg, opts)
	if err != nil {
		return nil, err
	}
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("xds: marshal bootstrap: %w", err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("xds: bootstrap to yaml: %w", err)
	}
	return y, nil
}
