package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/weir-ai/weir/controller/keyadmin"
	"github.com/weir-ai/weir/extproc/daemon"
)

func runExtproc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weir extproc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "", "extproc config YAML `file`; reloaded when it changes (this or --xds-server is required)")
	xdsServer := fs.String("xds-server", "", "take the config from the controller's xDS server at `host:port` instead of --config")
	xdsNode := fs.String("xds-node-id", "", "node `id` this replica reports to the xDS server; empty means the host name (the pod name)")
	xdsCA := fs.String("xds-ca", "", "CA bundle `file` (PEM) the xDS server's certificate must chain to; empty means the system roots")
	xdsCert := fs.String("xds-cert", "", "client certificate `file` (PEM) for an xDS server that requires one")
	xdsKey := fs.String("xds-key", "", "client private key `file` (PEM) for --xds-cert")
	xdsInsecure := fs.Bool("xds-insecure", false, "connect to the xDS server in plaintext (loopback, or a network that is otherwise protected: the stream carries provider credentials)")
	listen := fs.String("listen", daemon.DefaultListen, "gRPC listen `address`: unix:///path, or host:port (needs --tls-* or, on loopback only, --insecure-tcp)")
	socketMode := daemon.DefaultSocketMode
	fs.Func("socket-mode", "`mode` (octal) of the unix socket; the default 0600 admits only this user", func(v string) error {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m == 0 || m > 0o777 {
			return fmt.Errorf("want an octal mode between 0001 and 0777, got %q", v)
		}
		socketMode = os.FileMode(m)
		return nil
	})
	tlsCert := fs.String("tls-cert", "", "server certificate `file` (PEM) for a TCP --listen")
	tlsKey := fs.String("tls-key", "", "server private key `file` (PEM) for a TCP --listen")
	tlsClientCA := fs.String("tls-client-ca", "", "CA bundle `file` (PEM) that Envoy's client certificate must chain to")
	insecureTCP := fs.Bool("insecure-tcp", false, "serve plaintext, unauthenticated gRPC on a loopback TCP --listen (development only)")
	adminAddr := fs.String("admin", "127.0.0.1:9003", "admin/metrics listen `address` (/healthz, /readyz, /metrics); empty disables")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	profiling := fs.Bool("pprof", false, "serve net/http/pprof on the admin address")
	keyAdmin := fs.String("key-admin", "", "key management API listen `address` (needs WEIR_MASTER_KEY); empty disables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*cfg == "") == (*xdsServer == "") {
		fs.Usage()
		return errUsage("one of --config and --xds-server is required")
	}
	op, access, err := newLoggers(*level, stdout, stderr)
	if err != nil {
		return err
	}
	master := os.Getenv(envMasterKey)
	if *keyAdmin != "" && master == "" {
		return errUsage("--key-admin needs the master key in " + envMasterKey)
	}
	if err := checkMaster(master); err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Options{
		KeyAdminListen:  *keyAdmin,
		KeyAdmin:        keyadmin.Builder(master),
		ConfigPath:      *cfg,
		XDSServer:       *xdsServer,
		XDSNodeID:       *xdsNode,
		XDSCAFile:       *xdsCA,
		XDSCertFile:     *xdsCert,
		XDSKeyFile:      *xdsKey,
		XDSInsecure:     *xdsInsecure,
		Listen:          *listen,
		SocketMode:      socketMode,
		TLSCertFile:     *tlsCert,
		TLSKeyFile:      *tlsKey,
		TLSClientCAFile: *tlsClientCA,
		InsecureTCP:     *insecureTCP,
		AdminListen:     *adminAddr,
		Profiling:       *profiling,
		Logger:          op,
		AccessLog:       access,
	})
}

type errUsage string

func (e errUsage) Error() string { return string(e) }

// envMasterKey holds the key admin API's master key. It is read from the
// environment, never a flag, so it does not show up in process listings.
const envMasterKey = "WEIR_MASTER_KEY"

// checkMaster refuses a weak master key before anything starts, naming
// the variable; unset is fine here (the caller decides what that means).
func checkMaster(master string) error {
	if master == "" {
		return nil
	}
	if err := keyadmin.CheckMasterKey(master); err != nil {
		return errUsage(envMasterKey + ": " + err.Error())
	}
	return nil
}
