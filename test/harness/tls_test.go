package harness

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/extproc/daemon"
	"github.com/weir-ai/weir/test/testpki"
)

// tlsUpstream is an httptest TLS server that records the SNI it was sent.
type tlsUpstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	sni []string
}

func newTLSUpstream(t *testing.T, leaf *testpki.Leaf, clientCAs *testpki.CA) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	u.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			u.mu.Lock()
			u.sni = append(u.sni, hello.ServerName)
			u.mu.Unlock()
			return nil, nil
		},
	}
	// Failed handshakes are the point of several cases.
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if clientCAs != nil {
		u.srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		u.srv.TLS.ClientCAs = clientCAs.Pool()
	}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *tlsUpstream) sentSNI() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.sni...)
}

func tlsCluster(t *testing.T, tc *tlsv3.UpstreamTlsContext) *clusterv3.Cluster {
	t.Helper()
	a, err := anypb.New(tc)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterv3.Cluster{
		Name: "c",
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "c", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1},
				}}},
			}}}},
		}}},
		TransportSocket: &corev3.TransportSocket{
			Name:       xds.TransportSocketTLS,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
		},
	}
}

func file(p string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p}}
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func sanExact(typ tlsv3.SubjectAltNameMatcher_SanType, v string) *tlsv3.SubjectAltNameMatcher {
	return &tlsv3.SubjectAltNameMatcher{SanType: typ, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}
}

func validation(ca *corev3.DataSource, sans ...*tlsv3.SubjectAltNameMatcher) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: ca, MatchTypedSubjectAltNames: sans,
	}}}
}

// get makes one request through the harness's transport for cluster c.
func get(t *testing.T, c *clusterv3.Cluster, url string) (string, error) {
	t.Helper()
	cfgs, err := clusterTLSConfigs([]*clusterv3.Cluster{c})
	if err != nil {
		t.Fatalf("clusterTLSConfigs: %v", err)
	}
	tr := upstreamTLSTransports(cfgs)[c.GetName()]
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestUpstreamTLSVerification(t *testing.T) {
	ca, other, clientCA := testpki.NewCA(t, "provider CA"), testpki.NewCA(t, "other CA"), testpki.NewCA(t, "envoy client CA")
	leaf := ca.Issue(t, "api", "api.example.test", "*.wild.example.test", "127.0.0.1")
	caFile := testpki.WriteFile(t, "", "ca.pem", ca.PEM)
	client := clientCA.Issue(t, "envoy", "envoy.example.test")
	wrongClient := other.Issue(t, "envoy", "envoy.example.test")
	plain := newTLSUpstream(t, leaf, nil)
	mtls := newTLSUpstream(t, leaf, clientCA)
	withClientCert := func(l *testpki.Leaf) *tlsv3.CommonTlsContext {
		c := validation(file(caFile), sanExact(tlsv3.SubjectAltNameMatcher_DNS, "api.example.test"))
		c.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: inline(l.CertPEM), PrivateKey: inline(l.KeyPEM)}}
		return c
	}

	tests := []struct {
		name    string
		up      *tlsUpstream
		tc      *tlsv3.UpstreamTlsContext
		wantErr string // empty: the request must succeed
		wantSNI string
	}{
		{"trusted CA file and matching DNS SAN", plain, &tlsv3.UpstreamTlsContext{Sni: "api.example.test", CommonTlsContext: validation(file(caFile), sanExact(tlsv3.SubjectAltNameMatcher_DNS, "api.example.test"))}, "", "api.example.test"},
		{"inline CA, exact DNS matcher covered by a wildcard SAN", plain, &tlsv3.UpstreamTlsContext{Sni: "x.wild.example.test", CommonTlsContext: validation(inline(ca.PEM), sanExact(tlsv3.SubjectAltNameMatcher_DNS, "X.wild.example.test"))}, "", "x.wild.example.test"},
		{"inline_string CA and an IP SAN, no SNI", plain, &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(&corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(ca.PEM)}}, sanExact(tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "127.0.0.1"))}, "", ""},
		{"trusted CA without SAN matchers checks only the chain", plain, &tlsv3.UpstreamTlsContext{Sni: "anything.test", CommonTlsContext: validation(file(caFile))}, "", "anything.test"},
		{"no validation context accepts any certificate, as Envoy does", plain, &tlsv3.UpstreamTlsContext{Sni: "api.example.test"}, "", "api.example.test"},
		{"wrong SAN", plain, &tlsv3.UpstreamTlsContext{Sni: "api.example.test", CommonTlsContext: validation(file(caFile), sanExact(tlsv3.SubjectAltNameMatcher_DNS, "api.other.test"))}, "matches no subject alternative name", "api.example.test"},
		{"a wildcard SAN covers one label only", plain, &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(file(caFile), sanExact(tlsv3.SubjectAltNameMatcher_DNS, "a.b.wild.example.test"))}, "matches no subject alternative name", ""},
		{"untrusted CA", plain, &tlsv3.UpstreamTlsContext{Sni: "api.example.test", CommonTlsContext: validation(inline(other.PEM), sanExact(tlsv3.SubjectAltNameMatcher_DNS, "api.example.test"))}, "certificate signed by unknown authority", "api.example.test"},
		{"client certificate from the server's client CA", mtls, &tlsv3.UpstreamTlsContext{Sni: "api.example.test", CommonTlsContext: withClientCert(client)}, "", "api.example.test"},
		{"client certificate from another CA", mtls, &tlsv3.UpstreamTlsContext{Sni: "api.example.test", CommonTlsContext: withClientCert(wrongClient)}, "unknown certificate authority", "api.example.test"},
		{"no client certificate", mtls, &tlsv3.UpstreamTlsContext{Sni: "api.example.test", CommonTlsContext: validation(file(caFile))}, "certificate required", "api.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.up.sentSNI())
			body, err := get(t, tlsCluster(t, tt.tc), tt.up.srv.URL)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("request failed: %v", err)
			case tt.wantErr == "" && body != "ok":
				t.Fatalf("body = %q", body)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if sni := tt.up.sentSNI(); len(sni) <= before || sni[before] != tt.wantSNI {
				t.Errorf("SNI sent = %q, want %q", sni[before:], tt.wantSNI)
			}
		})
	}
}

// TestUpstreamTLSFromGeneratedConfig connects with the TLS context xds
// generates for a backend's tls block.
func TestUpstreamTLSFromGeneratedConfig(t *testing.T) {
	ca, other := testpki.NewCA(t, "provider CA"), testpki.NewCA(t, "other CA")
	up := newTLSUpstream(t, ca.Issue(t, "llm", "llm.corp.test"), nil)
	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	otherFile := testpki.WriteFile(t, dir, "other.pem", other.PEM)
	tests := []struct {
		name    string
		tls     string
		opts    xds.Options
		wantErr string
	}{
		{"ca_file and server_name", `{ca_file: "` + caFile + `", server_name: llm.corp.test}`, xds.Options{}, ""},
		{"subject_alt_names", `{ca_file: "` + caFile + `", server_name: llm.corp.test, subject_alt_names: [other.corp.test]}`, xds.Options{}, "matches no subject alternative name"},
		{"system bundle that lacks the CA", `{server_name: llm.corp.test}`, xds.Options{SystemCAFile: otherFile}, "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := "version: weir.dev/v1alpha1\nbackends:\n  - {name: b, provider: openai, base_url: \"" + up.srv.URL + "/v1\", tls: " + tt.tls + "}\n"
			cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			opts.ExtProcAddress = "127.0.0.1:1"
			res, err := xds.Build(cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			var c *clusterv3.Cluster
			for _, cl := range res.Clusters {
				if cl.GetName() == config.ClusterName("b") {
					c = cl
				}
			}
			if _, err := parseCluster(c); err != nil {
				t.Fatalf("parseCluster: %v", err)
			}
			body, err := get(t, c, up.srv.URL)
			if tt.wantErr == "" {
				if err != nil || body != "ok" {
					t.Fatalf("body %q, err %v", body, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestUpstreamTLSRefusesUnemulated checks that parseCluster fails at
// start-up on TLS options the harness would not treat as Envoy does.
func TestUpstreamTLSRefusesUnemulated(t *testing.T) {
	caPEM := testpki.NewCA(t, "ca").PEM
	dns := sanExact(tlsv3.SubjectAltNameMatcher_DNS, "a.test")
	tests := []struct {
		name    string
		tc      *tlsv3.UpstreamTlsContext
		wantErr string
	}{
		{"renegotiation", &tlsv3.UpstreamTlsContext{AllowRenegotiation: true}, "allow_renegotiation not emulated"},
		{"auto sni", &tlsv3.UpstreamTlsContext{AutoHostSni: true}, "auto_host_sni not emulated"},
		{"tls params", &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsParams: &tlsv3.TlsParameters{}}}, "tls_params not emulated"},
		{"max verify depth", &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(caPEM), MaxVerifyDepth: wrapperspb.UInt32(1)}}}}, "max_verify_depth not emulated"},
		{"regex SAN", &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(inline(caPEM), &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_DNS, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}}})}, "not emulated"},
		{"other-name SAN", &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(inline(caPEM), sanExact(tlsv3.SubjectAltNameMatcher_OTHER_NAME, "x"))}, "SAN type OTHER_NAME not emulated"},
		{"SAN without CA", &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(nil, dns)}, "without trusted CA is insecure"},
		{"system_root_certs alone", &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{SystemRootCerts: &tlsv3.CertificateValidationContext_SystemRootCerts{}, MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{dns}}}}}, "system_root_certs without trusted_ca"},
		{"missing CA file", &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(file("/nonexistent/ca.pem"), dns)}, "no such file"},
		{"CA file without certificates", &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(inline([]byte("junk")), dns)}, "no PEM certificates"},
		{"env data source", &tlsv3.UpstreamTlsContext{CommonTlsContext: validation(&corev3.DataSource{Specifier: &corev3.DataSource_EnvironmentVariable{EnvironmentVariable: "CA"}}, dns)}, "not emulated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCluster(tlsCluster(t, tt.tc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestExtProcMutualTLSWithDaemon dials a `weir extproc` serving mutual TLS
// with the TLS config the harness derives from the extproc cluster that xds
// generates for the matching `weirctl envoy-config --extproc-tls-*` flags.
func TestExtProcMutualTLSWithDaemon(t *testing.T) {
	serverCA, envoyCA, otherCA := testpki.NewCA(t, "extproc CA"), testpki.NewCA(t, "envoy CA"), testpki.NewCA(t, "other CA")
	dir := t.TempDir()
	srv := serverCA.Issue(t, "extproc", "extproc.weir.test")
	envoy := envoyCA.Issue(t, "envoy", "envoy.weir.test")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			ConfigYAML:      []byte("version: weir.dev/v1alpha1\n"),
			Lookup:          func(string) (string, bool) { return "", false },
			Listen:          "127.0.0.1:0",
			TLSCertFile:     testpki.WriteFile(t, dir, "srv.pem", srv.CertPEM),
			TLSKeyFile:      testpki.WriteFile(t, dir, "srv.key", srv.KeyPEM),
			TLSClientCAFile: testpki.WriteFile(t, dir, "envoy-ca.pem", envoyCA.PEM),
			Logger:          slog.New(slog.DiscardHandler),
			Ready:           func(g, _, _ net.Addr) { ready <- g.String() },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	cfg := mustParseConfig(t, "version: weir.dev/v1alpha1\n")
	tests := []struct {
		name    string
		tls     xds.ExtProcTLS
		wantErr bool
	}{
		{"matching CA, SNI and client certificate", xds.ExtProcTLS{CAFile: testpki.WriteFile(t, dir, "extproc-ca.pem", serverCA.PEM), ServerName: "extproc.weir.test"}, false},
		{"server name the certificate lacks", xds.ExtProcTLS{CAFile: testpki.WriteFile(t, dir, "extproc-ca2.pem", serverCA.PEM), ServerName: "other.weir.test"}, true},
		{"server CA not trusted", xds.ExtProcTLS{CAFile: testpki.WriteFile(t, dir, "other-ca.pem", otherCA.PEM), ServerName: "extproc.weir.test"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.tls
			opts.CertFile = testpki.WriteFile(t, "", "envoy.pem", envoy.CertPEM)
			opts.KeyFile = testpki.WriteFile(t, "", "envoy.key", envoy.KeyPEM)
			res, err := xds.Build(cfg, xds.Options{ExtProcAddress: addr, ExtProcTLS: &opts})
			if err != nil {
				t.Fatal(err)
			}
			cfgs, err := clusterTLSConfigs(res.Clusters)
			if err != nil {
				t.Fatal(err)
			}
			tc := cfgs[xds.ExtProcCluster]
			if tc == nil {
				t.Fatal("extproc cluster has no TLS config")
			}
			conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sctx := metadata.AppendToOutgoingContext(t.Context(), config.FilterLevelHeader, config.FilterLevelRouter)
			st, err := extprocv3.NewExternalProcessorClient(conn).Process(sctx)
			if err == nil {
				err = st.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(`{}`), EndOfStream: true}}})
			}
			if err == nil {
				_, err = st.Recv()
			}
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func mustParseConfig(t *testing.T, y string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return c
}
