package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// ClusterDomain is the cluster's DNS suffix, as the controller renders
// Service endpoints.
const ClusterDomain = "cluster.local"

// ServiceHost is the host:port a Service port has inside the cluster.
func ServiceHost(namespace, name string, port int32) string {
	return net.JoinHostPort(name+"."+namespace+".svc."+ClusterDomain, strconv.Itoa(int(port)))
}

// clusterDNS resolves Service names to the loopback listeners of the
// fakes that play them: the one part of the stack that is not real.
// Any other name fails, as it would in a cluster without it.
type clusterDNS map[string]string

func (d clusterDNS) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	to, ok := d[addr]
	if !ok {
		return nil, fmt.Errorf("dial %s: no such host in the emulated cluster DNS", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

// transport is the harness's upstream codec over the emulated DNS.
func (d clusterDNS) transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         d.dial,
		DisableCompression:  true, // Envoy passes encoded bodies through
		MaxIdleConnsPerHost: 64,
	}
}
