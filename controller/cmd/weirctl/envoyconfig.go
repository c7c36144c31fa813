package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xds/envoycheck"
)

func runEnvoyConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weirctl envoy-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "extproc config YAML `file`; empty uses the embedded default")
	extproc := fs.String("extproc", config.DefaultExtProcAddress, "`address` of the weir extproc gRPC server: unix:///path or host:port")
	epCert := fs.String("extproc-tls-cert", "", "Envoy's client certificate `file` (PEM) for mutual TLS to a TCP extproc")
	epKey := fs.String("extproc-tls-key", "", "Envoy's client private key `file` (PEM)")
	epCA := fs.String("extproc-tls-ca", "", "CA bundle `file` (PEM) the extproc's server certificate must chain to")
	epSNI := fs.String("extproc-tls-sni", "", "server `name` sent as SNI and required in the extproc certificate's SANs; empty means the --extproc host")
	epInsecure := fs.Bool("extproc-insecure", false, "allow a plaintext extproc at a TCP address that is not loopback (only on an otherwise protected network)")
	systemCA := fs.String("system-ca", xds.DefaultSystemCAFile, "CA bundle `file`, as Envoy sees it, that https backends without tls.ca_file are verified against")
	listen := fs.String("listen", "0.0.0.0:8080", "Envoy listener `address` for client traffic")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "Envoy admin `address`; empty disables it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg *config.Config
	var err error
	if *cfgPath == "" {
		cfg, err = config.Parse(config.DefaultYAML(), os.LookupEnv)
	} else {
		cfg, err = config.Load(*cfgPath)
	}
	if err != nil {
		return err
	}
	opts := xds.Options{ExtProcAddress: *extproc, InsecureExtProc: *epInsecure, SystemCAFile: *systemCA}
	if *epCert != "" || *epKey != "" || *epCA != "" || *epSNI != "" {
		opts.ExtProcTLS = &xds.ExtProcTLS{CertFile: *epCert, KeyFile: *epKey, CAFile: *epCA, ServerName: *epSNI}
	}
	if opts.ListenAddress, opts.ListenPort, err = splitHostPort(*listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if *adminAddr != "" {
		if opts.AdminAddress, opts.AdminPort, err = splitHostPort(*adminAddr); err != nil {
			return fmt.Errorf("--admin: %w", err)
		}
	}
	// The same static check make test runs: never print a config that
	// Envoy would load but not run as Weir expects.
	res, err := xds.Build(cfg, opts)
	if err != nil {
		return err
	}
	if err := envoycheck.Check(res); err != nil {
		return fmt.Errorf("the generated Envoy config fails its static check: %w", err)
	}
	y, err := xds.BootstrapYAML(cfg, opts)
	if err != nil {
		return err
	}
	_, err = stdout.Write(y)
	return err
}

func splitHostPort(s string) (string, uint32, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return h, uint32(n), nil
}
