package manager

import (
	"crypto/tls"
	"errors"
	"io"
	"testing"

	"github.com/weir-ai/weir/test/testpki"
)

// TestServerTLS: plaintext only on loopback or when asked for; with a
// client CA, a client without a certificate from it cannot complete the
// handshake, and one with it can.
func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "xds-ca")
	srv := ca.Issue(t, "weir-controller", "weir-controller.weir-system.svc")
	cli := ca.Issue(t, "extproc")
	other := testpki.NewCA(t, "other").Issue(t, "extproc")
	files := &XDSTLS{
		CertFile:     testpki.WriteFile(t, dir, "srv.pem", srv.CertPEM),
		KeyFile:      testpki.WriteFile(t, dir, "srv.key", srv.KeyPEM),
		ClientCAFile: testpki.WriteFile(t, dir, "ca.pem", ca.PEM),
	}
	for _, tt := range []struct {
		name     string
		tls      *XDSTLS
		listen   string
		insecure bool
		wantErr  error
		wantTLS  bool
	}{
		{"plaintext on loopback", nil, "127.0.0.1:18000", false, nil, false},
		{"plaintext on every address refused", nil, ":18000", false, ErrPlaintextXDS, false},
		{"plaintext in the cluster when asked for", nil, "0.0.0.0:18000", true, nil, false},
		{"tls", files, ":18000", false, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := serverTLS(tt.tls, tt.listen, tt.insecure)
			if !errors.Is(err, tt.wantErr) || (c != nil) != tt.wantTLS {
				t.Fatalf("serverTLS = %v, %v; want tls %v, err %v", c != nil, err, tt.wantTLS, tt.wantErr)
			}
		})
	}
	conf, err := serverTLS(files, ":0", false)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	for _, tt := range []struct {
		name string
		cert *testpki.Leaf
		ok   bool
	}{
		{"client certificate from the CA", cli, true},
		{"no client certificate", nil, false},
		{"certificate from another CA", other, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cc := &tls.Config{RootCAs: ca.Pool(), ServerName: "weir-controller.weir-system.svc", NextProtos: []string{"h2"}}
			if tt.cert != nil {
				pair, err := tls.X509KeyPair(tt.cert.CertPEM, tt.cert.KeyPEM)
				if err != nil {
					t.Fatal(err)
				}
				cc.Certificates = []tls.Certificate{pair}
			}
			conn, err := tls.Dial("tcp", lis.Addr().String(), cc)
			if err == nil {
				// TLS 1.3 reports a refused client certificate on the
				// first read, not in the handshake; the server closes
				// after its handshake, so an accepted client reads EOF.
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
				if errors.Is(err, io.EOF) {
					err = nil
				}
			}
			if (err == nil) != tt.ok {
				t.Fatalf("handshake err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
