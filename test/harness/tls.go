package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weir-ai/weir/controller/xds"
)

// This file emulates Envoy's upstream TLS transport socket
// (UpstreamTlsContext) with crypto/tls, as far as Weir's generated config
// uses it:
//
//   - sni is the SNI; empty sends none.
//   - Without a trusted CA Envoy accepts any certificate, and SAN matchers
//     without a trusted CA are a config error ("SAN-based verification of
//     peer certificates without trusted CA is insecure and not allowed").
//   - trusted_ca (filename, inline_bytes, inline_string) anchors the chain;
//     any certificate in it is an anchor (Envoy sets X509_V_FLAG_PARTIAL_CHAIN,
//     and Go treats every root as an anchor too). No EKU is required.
//   - system_root_certs is [#not-implemented-hide:] in Envoy and applies only
//     where trusted_ca is unset, so the harness accepts it beside trusted_ca
//     (where it changes nothing) and refuses it alone, which Envoy would not
//     treat as a trusted CA.
//   - match_typed_subject_alt_names: the certificate must carry a SAN of
//     the matcher's type that one matcher matches. An exact DNS matcher
//     uses DNS semantics (case-insensitive, a "*." SAN covers one label),
//     as Envoy's StringSanMatcher does with Utility::dnsNameMatch.
//   - tls_certificates (one chain and key) is the client certificate, and
//     alpn_protocols the ALPN list.
//
// Every other field is refused at start-up, so a config the harness would
// treat differently from Envoy fails loudly.

// clusterTLSConfigs returns the client TLS config of every cluster with a
// TLS transport socket, by cluster name. Files are read now, as Envoy reads
// them when the cluster loads.
func clusterTLSConfigs(clusters []*clusterv3.Cluster) (map[string]*tls.Config, error) {
	out := map[string]*tls.Config{}
	for _, c := range clusters {
		ts := c.GetTransportSocket()
		if ts == nil {
			continue
		}
		cfg, err := upstreamTLSConfig(ts)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
		}
		out[c.GetName()] = cfg
	}
	return out, nil
}

// upstreamTLSTransports returns one HTTP/1.1 transport per TLS cluster,
// dialing with that cluster's TLS config. It dials TLS itself so that an
// empty sni sends no SNI, as Envoy does (http.Transport would send the
// dialed host name).
func upstreamTLSTransports(cfgs map[string]*tls.Config) map[string]*http.Transport {
	out := make(map[string]*http.Transport, len(cfgs))
	for name, cfg := range cfgs {
		var d net.Dialer
		out[name] = &http.Transport{
			Proxy:               nil,
			DisableCompression:  true, // Envoy passes encoded bodies through
			MaxIdleConnsPerHost: 64,
			ForceAttemptHTTP2:   false,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				raw, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				c := cfg.Clone()
				c.NextProtos = nil // the harness upstream codec is HTTP/1.1 only
				tc := tls.Client(raw, c)
				if err := tc.HandshakeContext(ctx); err != nil {
					raw.Close()
					return nil, err
				}
				return tc, nil
			},
		}
	}
	return out
}

// upstreamTLSConfig turns an envoy.transport_sockets.tls transport socket
// into a client tls.Config that verifies as Envoy would.
func upstreamTLSConfig(ts *corev3.TransportSocket) (*tls.Config, error) {
	if ts.GetName() != xds.TransportSocketTLS {
		return nil, fmt.Errorf("transport socket %s not emulated", ts.GetName())
	}
	utc := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(utc); err != nil {
		return nil, fmt.Errorf("transport socket %s: %w", ts.GetName(), err)
	}
	if err := onlyFields(utc, "common_tls_context", "sni"); err != nil {
		return nil, err
	}
	ctc := utc.GetCommonTlsContext()
	if err := onlyFields(ctc, "tls_certificates", "validation_context", "alpn_protocols"); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		ServerName: utc.GetSni(),
		MinVersion: tls.VersionTLS12, // Envoy's client default minimum
		NextProtos: slices.Clone(ctc.GetAlpnProtocols()),
		// Verification is VerifyConnection's, with Envoy's rules.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
	}
	switch certs := ctc.GetTlsCertificates(); len(certs) {
	case 0:
	case 1:
		if err := onlyFields(certs[0], "certificate_chain", "private_key"); err != nil {
			return nil, err
		}
		chain, err := readDataSource(certs[0].GetCertificateChain())
		if err != nil {
			return nil, fmt.Errorf("certificate_chain: %w", err)
		}
		key, err := readDataSource(certs[0].GetPrivateKey())
		if err != nil {
			return nil, fmt.Errorf("private_key: %w", err)
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return nil, fmt.Errorf("tls_certificates: %w", err)
		}
		// Sent whatever CAs the server asks for, as BoringSSL does; Go's
		// Certificates field would send nothing on a mismatch.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	default:
		return nil, errors.New("more than one tls_certificates entry is not emulated")
	}
	vc := ctc.GetValidationContext()
	if vc == nil {
		return cfg, nil // Envoy accepts any certificate
	}
	if err := onlyFields(vc, "trusted_ca", "system_root_certs", "match_typed_subject_alt_names"); err != nil {
		return nil, err
	}
	if vc.GetSystemRootCerts() != nil && vc.GetTrustedCa() == nil {
		return nil, errors.New("system_root_certs without trusted_ca: Envoy does not implement system_root_certs, so it would verify nothing (or refuse SAN matchers); name the system bundle in trusted_ca")
	}
	matchers, err := compileSANMatchers(vc.GetMatchTypedSubjectAltNames())
	if err != nil {
		return nil, err
	}
	if vc.GetTrustedCa() == nil {
		if len(matchers) > 0 {
			return nil, errors.New("SAN-based verification of peer certificates without trusted CA is insecure and not allowed")
		}
		return cfg, nil
	}
	pem, err := readDataSource(vc.GetTrustedCa())
	if err != nil {
		return nil, fmt.Errorf("trusted_ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("trusted_ca: no PEM certificates")
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyPeer(cs.PeerCertificates, roots, matchers)
	}
	return cfg, nil
}

// verifyPeer checks the chain against roots, then the leaf's SANs.
func verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, matchers []sanMatcher) error {
	if len(certs) == 0 {
		return errors.New("tls: upstream sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("tls: upstream certificate: %w", err)
	}
	if len(matchers) == 0 {
		return nil
	}
	for _, m := range matchers {
		for _, san := range certSANs(certs[0], m.typ) {
			if m.match(san) {
				return nil
			}
		}
	}
	return errors.New("tls: upstream certificate matches no subject alternative name matcher")
}

func certSANs(c *x509.Certificate, typ tlsv3.SubjectAltNameMatcher_SanType) []string {
	switch typ {
	case tlsv3.SubjectAltNameMatcher_DNS:
		return c.DNSNames
	case tlsv3.SubjectAltNameMatcher_EMAIL:
		return c.EmailAddresses
	case tlsv3.SubjectAltNameMatcher_URI:
		out := make([]string, 0, len(c.URIs))
		for _, u := range c.URIs {
			out = append(out, u.String())
		}
		return out
	case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		out := make([]string, 0, len(c.IPAddresses))
		for _, ip := range c.IPAddresses {
			out = append(out, ip.String())
		}
		return out
	}
	return nil
}

type sanMatcher struct {
	typ   tlsv3.SubjectAltNameMatcher_SanType
	match func(san string) bool
}

func compileSANMatchers(ms []*tlsv3.SubjectAltNameMatcher) ([]sanMatcher, error) {
	out := make([]sanMatcher, 0, len(ms))
	for _, m := range ms {
		if err := onlyFields(m, "san_type", "matcher"); err != nil {
			return nil, err
		}
		switch m.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_EMAIL,
			tlsv3.SubjectAltNameMatcher_URI, tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		default:
			return nil, fmt.Errorf("SAN type %s not emulated", m.GetSanType())
		}
		sm := m.GetMatcher()
		if err := onlyFields(sm, "exact", "prefix", "suffix", "contains", "ignore_case"); err != nil {
			return nil, err
		}
		fold := func(s string) string { return s }
		if sm.GetIgnoreCase() {
			fold = strings.ToLower
		}
		var match func(string) bool
		switch p := sm.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			if m.GetSanType() == tlsv3.SubjectAltNameMatcher_DNS {
				want := p.Exact
				match = func(san string) bool { return dnsNameMatch(want, san) }
			} else {
				want := fold(p.Exact)
				match = func(san string) bool { return fold(san) == want }
			}
		case *matcherv3.StringMatcher_Prefix:
			want := fold(p.Prefix)
			match = func(san string) bool { return strings.HasPrefix(fold(san), want) }
		case *matcherv3.StringMatcher_Suffix:
			want := fold(p.Suffix)
			match = func(san string) bool { return strings.HasSuffix(fold(san), want) }
		case *matcherv3.StringMatcher_Contains:
			want := fold(p.Contains)
			match = func(san string) bool { return strings.Contains(fold(san), want) }
		default:
			return nil, fmt.Errorf("string matcher %T not emulated", p)
		}
		out = append(out, sanMatcher{typ: m.GetSanType(), match: match})
	}
	return out, nil
}

// dnsNameMatch is Envoy's Utility::dnsNameMatch for the patterns public
// CAs issue: equal ignoring case, or a "*." pattern covering exactly one
// leading label.
func dnsNameMatch(name, pattern string) bool {
	name, pattern = strings.ToLower(name), strings.ToLower(pattern)
	if name == pattern {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*")
	if !ok || !strings.HasPrefix(rest, ".") || len(name) <= len(rest) {
		return false
	}
	label, suffix := name[:len(name)-len(rest)], name[len(name)-len(rest):]
	return suffix == rest && label != "" && !strings.Contains(label, ".")
}

func readDataSource(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		return os.ReadFile(s.Filename)
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case nil:
		return nil, errors.New("empty data source")
	default:
		return nil, fmt.Errorf("data source %T not emulated", s)
	}
}

// onlyFields refuses a message with any field set outside allowed.
func onlyFields(m proto.Message, allowed ...string) error {
	var extra []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, string(fd.Name())) {
			extra = append(extra, string(fd.Name()))
		}
		return true
	})
	if len(extra) > 0 {
		return fmt.Errorf("%s: %s not emulated", m.ProtoReflect().Descriptor().Name(), strings.Join(extra, ", "))
	}
	return nil
}
