package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"

	"github.com/weir-ai/weir/config/certpool"

	"google.golang.org/grpc"

	"github.com/weir-ai/weir/extproc/xdsclient"
)

// checkXDS refuses contradictory config sources and TLS settings before
// anything starts.
func checkXDS(o Options) error {
	if o.XDSServer == "" {
		return nil
	}
	if o.ConfigPath != "" || o.ConfigYAML != nil {
		return errors.New("config comes from a file or from the xDS server, not both")
	}
	if o.KeyAdminListen != "" {
		// The API's store starts with the first config, which over xDS
		// arrives after start; and with a controller, keys are
		// VirtualKeys it issues.
		return errors.New("the key admin API is not available with config over xDS; the controller issues keys")
	}
	if (o.XDSCertFile == "") != (o.XDSKeyFile == "") {
		return errors.New("xds client certificate: set both the certificate and its key, or neither")
	}
	if o.XDSInsecure && (o.XDSCAFile != "" || o.XDSCertFile != "") {
		return errors.New("xds: insecure (plaintext) contradicts the TLS files given")
	}
	return nil
}

// dialXDS connects to the controller. The stream carries provider
// credentials, so TLS (verifying the controller against XDSCAFile, or
// the system roots) is the default; plaintext needs XDSInsecure, for a
// loopback address or a network that is otherwise protected (a mesh).
func dialXDS(o Options) (*grpc.ClientConn, error) {
	if o.XDSInsecure {
		o.logger().Warn("xds: plaintext connection to the controller; provider credentials cross it unencrypted", "server", o.XDSServer)
		return xdsclient.Dial(o.XDSServer, nil)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.XDSCAFile != "" {
		pool, err := certpool.Load(o.XDSCAFile)
		if err != nil {
			return nil, fmt.Errorf("xds CA: %w", err)
		}
		conf.RootCAs = pool
	}
	if o.XDSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.XDSCertFile, o.XDSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("xds client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return xdsclient.Dial(o.XDSServer, conf)
}

// nodeID is XDSNodeID, else the host name (the pod name in Kubernetes).
func nodeID(o Options) string {
	if o.XDSNodeID != "" {
		return o.XDSNodeID
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "weir-extproc"
	}
	return h
}
