package manager

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/weir-ai/weir/config/certpool"
)

// XDSTLS serves ADS over TLS. The extproc's stream carries provider
// credentials (the config resource holds the backends' keys), so outside
// a loopback address the controller refuses plaintext unless told
// otherwise ([Options.XDSInsecure]).
type XDSTLS struct {
	// CertFile and KeyFile are the server's certificate chain and key.
	CertFile, KeyFile string
	// ClientCAFile, when set, requires every client (Envoy and the
	// extproc replicas) to present a certificate chaining to it.
	ClientCAFile string
}

// ErrPlaintextXDS refuses plaintext ADS on a non-loopback address.
var ErrPlaintextXDS = errors.New("the xDS stream carries provider credentials: serve it with TLS (--xds-tls-cert, --xds-tls-key) or, on a network that is otherwise protected, pass --xds-insecure")

// serverTLS returns the listener's TLS config, or nil for plaintext when
// that is allowed.
func serverTLS(t *XDSTLS, listen string, insecure bool) (*tls.Config, error) {
	if t == nil {
		if insecure || loopback(listen) {
			return nil, nil
		}
		return nil, ErrPlaintextXDS
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("xds tls: a certificate and its key are both required")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("xds tls: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if t.ClientCAFile != "" {
		pool, err := certpool.Load(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("xds tls: client CA: %w", err)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// loopback reports whether a listen address only accepts local clients.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
