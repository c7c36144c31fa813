package xds

import (
	"fmt"
	"net/netip"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weir-ai/weir/config"
)

// TransportSocketTLS is the name of Envoy's TLS transport socket.
const TransportSocketTLS = "envoy.transport_sockets.tls"

// DefaultSystemCAFile is the system CA bundle of the official Envoy images
// (Debian/Ubuntu based), which provider certificates are verified against
// unless a backend sets tls.ca_file.
const DefaultSystemCAFile = "/etc/ssl/certs/ca-certificates.crt"

// ExtProcTLS makes Envoy reach the extproc over mutual TLS.
type ExtProcTLS struct {
	// CertFile and KeyFile are Envoy's client certificate chain and key
	// (PEM), presented to the extproc.
	CertFile string
	KeyFile  string
	// CAFile is the PEM bundle the extproc's server certificate must chain
	// to.
	CAFile string
	// ServerName is sent as SNI and must be a DNS subject alternative name
	// of the extproc's certificate. Empty means the extproc address's host
	// (an IP host is then matched as an IP subject alternative name).
	ServerName string
}

// backendTLS is the transport socket of an https backend: SNI, and a
// validation context that checks the chain and the subject alternative
// name. Without a validation context Envoy accepts any certificate.
func backendTLS(b *config.Backend, a address, systemCA string) (*corev3.TransportSocket, error) {
	var bt config.BackendTLS
	if b.TLS != nil {
		bt = *b.TLS
	}
	serverName := bt.ServerName
	if serverName == "" && !a.ip {
		serverName = a.host
	}
	sans := dnsSANs(bt.SubjectAltNames)
	if len(sans) == 0 {
		sans = hostSANs(serverName, a)
	}
	vc := &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans}
	if bt.CAFile != "" {
		vc.TrustedCa = fileSource(bt.CAFile)
	} else {
		// Envoy (through 1.37) does not implement system_root_certs (the
		// field is [#not-implemented-hide:]) and refuses SAN matching
		// without a trusted CA, so the system bundle is the trusted_ca.
		vc.TrustedCa = fileSource(systemCA)
	}
	return tlsSocket(&tlsv3.UpstreamTlsContext{
		Sni: serverName,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc},
		},
	})
}

// extProcTLS is the transport socket of the extproc cluster: Envoy's
// client certificate, the CA the extproc's certificate must chain to, the
// SAN match, and ALPN h2 for gRPC.
func extProcTLS(t *ExtProcTLS, a address) (*corev3.TransportSocket, error) {
	serverName := t.ServerName
	if serverName == "" && !a.ip {
		serverName = a.host
	}
	return tlsSocket(&tlsv3.UpstreamTlsContext{
		Sni: serverName,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: []string{"h2"},
			TlsCertificates: []*tlsv3.TlsCertificate{{
				CertificateChain: fileSource(t.CertFile),
				PrivateKey:       fileSource(t.KeyFile),
			}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa:                 fileSource(t.CAFile),
				MatchTypedSubjectAltNames: hostSANs(serverName, a),
			}},
		},
	})
}

func tlsSocket(tc *tlsv3.UpstreamTlsContext) (*corev3.TransportSocket, error) {
	a, err := anypb.New(tc)
	if err != nil {
		return nil, fmt.Errorf("xds: pack tls context: %w", err)
	}
	return &corev3.TransportSocket{Name: TransportSocketTLS, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

// hostSANs matches the server name as a DNS SAN or, with none, the
// address's IP as an IP SAN.
func hostSANs(serverName string, a address) []*tlsv3.SubjectAltNameMatcher {
	if serverName != "" {
		return dnsSANs([]string{serverName})
	}
	ip, err := netip.ParseAddr(a.host)
	if err != nil {
		return nil
	}
	return []*tlsv3.SubjectAltNameMatcher{{
		SanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: ip.String()}},
	}}
}

// dnsSANs are exact DNS matchers; Envoy matches an exact DNS matcher with
// DNS semantics, so a wildcard certificate (*.example.com) matches
// api.example.com.
func dnsSANs(names []string) []*tlsv3.SubjectAltNameMatcher {
	out := make([]*tlsv3.SubjectAltNameMatcher, 0, len(names))
	for _, n := range names {
		out = append(out, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}},
		})
	}
	return out
}

// isLoopback reports whether an extproc address stays on this host: a
// unix socket, a loopback IP or localhost.
func (a address) isLoopback() bool {
	if a.pipe != "" || a.host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(a.host)
	return err == nil && ip.IsLoopback()
}
