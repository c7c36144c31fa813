package xds

import (
	"bytes"
	"os"
	"testing"
)

// TestADSBootstrap: the Envoy bootstrap the kustomize base ships,
// manifests/envoy/bootstrap.yaml, is this function's output (-update, run
// by make generate, rewrites it) and passes Envoy's proto validation.
func TestADSBootstrap(t *testing.T) {
	o := ADSOptions{NodeID: "weir-envoy", ControllerAddress: "weir-controller.weir-system.svc.cluster.local:18000", AdminPort: 9901}
	b, err := ADSBootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	validateDeep(t, b)
	got, err := ADSBootstrapYAML(o)
	if err != nil {
		t.Fatal(err)
	}
	const out = "../../manifests/envoy/bootstrap.yaml"
	if *update {
		if err := os.WriteFile(out, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; run go test ./controller/xds -run TestADSBootstrap -update\ngot:\n%s", out, got)
	}
	// Mutual TLS to the controller: a validated transport socket.
	mt, err := ADSBootstrap(ADSOptions{ControllerAddress: "weir-controller.weir-system.svc:18000",
		ControllerTLS: &ExtProcTLS{CertFile: "/etc/weir/tls/tls.crt", KeyFile: "/etc/weir/tls/tls.key", CAFile: "/etc/weir/tls/ca.crt"}})
	if err != nil {
		t.Fatal(err)
	}
	validateDeep(t, mt)
	if ts := mt.GetStaticResources().GetClusters()[0].GetTransportSocket(); ts.GetName() != TransportSocketTLS {
		t.Fatalf("controller cluster transport socket %q, want TLS", ts.GetName())
	}
	for _, bad := range []ADSOptions{{}, {ControllerAddress: "no-port"}, {ControllerAddress: "c:1", ControllerTLS: &ExtProcTLS{}}} {
		if _, err := ADSBootstrap(bad); err == nil {
			t.Errorf("ADSBootstrap(%+v) accepted", bad)
		}
	}
}
