package xds

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// sanStrings renders SAN matchers as "TYPE:exact" for comparison.
func sanStrings(ms []*tlsv3.SubjectAltNameMatcher) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.GetSanType().String()+":"+m.GetMatcher().GetExact())
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clusterByName(t *testing.T, res *Resources, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range res.Clusters {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %s", name)
	return nil
}

func TestBackendTLS(t *testing.T) {
	tests := []struct {
		name     string
		backend  string
		opts     Options
		wantSNI  string
		wantCA   string
		wantSANs []string
	}{
		{
			name:    "default trusts the system bundle and matches the host",
			backend: `{name: b, provider: openai, base_url: "https://api.openai.com/v1"}`,
			opts:    testOpts,
			wantSNI: "api.openai.com", wantCA: DefaultSystemCAFile,
			wantSANs: []string{"DNS:api.openai.com"},
		},
		{
			name:    "system bundle path from options",
			backend: `{name: b, provider: openai, base_url: "https://api.openai.com:8443/v1"}`,
			opts:    Options{ExtProcAddress: "127.0.0.1:1063", SystemCAFile: "/etc/pki/tls/certs/ca-bundle.crt"},
			wantSNI: "api.openai.com", wantCA: "/etc/pki/tls/certs/ca-bundle.crt",
			wantSANs: []string{"DNS:api.openai.com"},
		},
		{
			name:    "ca_file replaces the system CAs",
			backend: `{name: b, provider: openai, base_url: "https://vllm.internal/v1", tls: {ca_file: /etc/weir/ca.pem}}`,
			opts:    testOpts,
			wantSNI: "vllm.internal", wantCA: "/etc/weir/ca.pem",
			wantSANs: []string{"DNS:vllm.internal"},
		},
		{
			name:    "server_name overrides SNI and the SAN",
			backend: `{name: b, provider: openai, base_url: "https://10.1.2.3/v1", tls: {server_name: llm.corp.example}}`,
			opts:    testOpts,
			wantSNI: "llm.corp.example", wantCA: DefaultSystemCAFile,
			wantSANs: []string{"DNS:llm.corp.example"},
		},
		{
			name:    "subject_alt_names override the SAN match only",
			backend: `{name: b, provider: openai, base_url: "https://api.openai.com/v1", tls: {subject_alt_names: ["*.openai.com", edge.example]}}`,
			opts:    testOpts,
			wantSNI: "api.openai.com", wantCA: DefaultSystemCAFile,
			wantSANs: []string{"DNS:*.openai.com", "DNS:edge.example"},
		},
		{
			name:    "an IP host sends no SNI and matches an IP SAN",
			backend: `{name: b, provider: openai, base_url: "https://[2001:db8::1]:8443/v1"}`,
			opts:    testOpts,
			wantSNI: "", wantCA: DefaultSystemCAFile,
			wantSANs: []string{"IP_ADDRESS:2001:db8::1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, "version: weir.dev/v1alpha1\nbackends:\n  - "+tt.backend+"\n")
			res, err := Build(cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			validateResources(t, res)
			c := clusterByName(t, res, "weir-backend-b")
			if c.GetTransportSocket().GetName() != TransportSocketTLS {
				t.Fatalf("transport socket = %v", c.GetTransportSocket())
			}
			tc := unpack[*tlsv3.UpstreamTlsContext](t, c.GetTransportSocket().GetTypedConfig())
			vc := tc.GetCommonTlsContext().GetValidationContext()
			if tc.GetSni() != tt.wantSNI {
				t.Errorf("sni = %q, want %q", tc.GetSni(), tt.wantSNI)
			}
			if got := vc.GetTrustedCa().GetFilename(); got != tt.wantCA {
				t.Errorf("trusted_ca = %q, want %q", got, tt.wantCA)
			}
			if vc.GetSystemRootCerts() != nil {
				t.Errorf("system_root_certs is not implemented in Envoy and must not be set")
			}
			if got := sanStrings(vc.GetMatchTypedSubjectAltNames()); !equalStrings(got, tt.wantSANs) {
				t.Errorf("SANs = %v, want %v", got, tt.wantSANs)
			}
			if len(tc.GetCommonTlsContext().GetTlsCertificates()) != 0 {
				t.Error("backend cluster presents a client certificate")
			}
		})
	}
}

func TestExtProcClusterTLS(t *testing.T) {
	mtls := func(sni string) *ExtProcTLS {
		return &ExtProcTLS{CertFile: "/etc/envoy/client.pem", KeyFile: "/etc/envoy/client.key", CAFile: "/etc/envoy/extproc-ca.pem", ServerName: sni}
	}
	tests := []struct {
		name     string
		opts     Options
		wantTLS  bool
		wantSNI  string
		wantSANs []string
	}{
		{"plaintext loopback", Options{ExtProcAddress: "127.0.0.1:1063"}, false, "", nil},
		{"unix socket", Options{ExtProcAddress: "unix:///run/weir/extproc.sock"}, false, "", nil},
		{"insecure opt-in", Options{ExtProcAddress: "10.0.0.5:1063", InsecureExtProc: true}, false, "", nil},
		{"dns name", Options{ExtProcAddress: "weir-extproc.weir.svc:1063", ExtProcTLS: mtls("")}, true, "weir-extproc.weir.svc", []string{"DNS:weir-extproc.weir.svc"}},
		{"ip with sni", Options{ExtProcAddress: "10.0.0.5:1063", ExtProcTLS: mtls("extproc.weir.internal")}, true, "extproc.weir.internal", []string{"DNS:extproc.weir.internal"}},
		{"ip without sni", Options{ExtProcAddress: "10.0.0.5:1063", ExtProcTLS: mtls("")}, true, "", []string{"IP_ADDRESS:10.0.0.5"}},
	}
	cfg := mustParse(t, "version: weir.dev/v1alpha1\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Build(cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			validateResources(t, res)
			c := clusterByName(t, res, ExtProcCluster)
			if !tt.wantTLS {
				if c.GetTransportSocket() != nil {
					t.Fatalf("unexpected transport socket %v", c.GetTransportSocket())
				}
				return
			}
			tc := unpack[*tlsv3.UpstreamTlsContext](t, c.GetTransportSocket().GetTypedConfig())
			ctx := tc.GetCommonTlsContext()
			if tc.GetSni() != tt.wantSNI {
				t.Errorf("sni = %q, want %q", tc.GetSni(), tt.wantSNI)
			}
			if got := ctx.GetAlpnProtocols(); !equalStrings(got, []string{"h2"}) {
				t.Errorf("alpn = %v", got)
			}
			certs := ctx.GetTlsCertificates()
			if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != "/etc/envoy/client.pem" || certs[0].GetPrivateKey().GetFilename() != "/etc/envoy/client.key" {
				t.Errorf("tls_certificates = %v", certs)
			}
			vc := ctx.GetValidationContext()
			if vc.GetTrustedCa().GetFilename() != "/etc/envoy/extproc-ca.pem" || vc.GetSystemRootCerts() != nil {
				t.Errorf("validation context = %s", protojson.Format(vc))
			}
			if got := sanStrings(vc.GetMatchTypedSubjectAltNames()); !equalStrings(got, tt.wantSANs) {
				t.Errorf("SANs = %v, want %v", got, tt.wantSANs)
			}
		})
	}
}
