// Package certpool reads a PEM bundle of CA certificates from a file: the
// one definition behind every CA file Weir loads itself (Redis, the
// extproc's client CA, the controller's xDS client CA, the extproc's view
// of the controller), so each refuses a file without a certificate the
// same way instead of silently trusting nothing.
package certpool

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrNoCertificate is returned for a file that holds no PEM certificate.
var ErrNoCertificate = errors.New("no PEM certificate")

// Load returns the certificates of the PEM file at path as a pool.
func Load(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w in %s", ErrNoCertificate, path)
	}
	return p, nil
}
