package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/manager"
	"github.com/weir-ai/weir/controller/xds"
)

// runController runs the Kubernetes controller until SIGINT or SIGTERM.
func runController(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("weirctl controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "base config YAML `file`: limits store, spend, logging, pricing (backends, models and keys come from CRDs and must not be in it); empty uses defaults")
	xdsListen := fs.String("xds-listen", ":18000", "ADS gRPC listen `address` for Envoy and the extproc replicas")
	xdsCert := fs.String("xds-tls-cert", "", "server certificate `file` (PEM) for the ADS listener")
	xdsKey := fs.String("xds-tls-key", "", "server private key `file` (PEM)")
	xdsClientCA := fs.String("xds-tls-client-ca", "", "CA bundle `file` (PEM) every xDS client's certificate must chain to (mutual TLS)")
	xdsInsecure := fs.Bool("xds-insecure", false, "serve ADS in plaintext on a non-loopback address (the stream carries provider credentials: only on a network that is otherwise protected)")
	metrics := fs.String("metrics-listen", ":8080", "Prometheus /metrics `address`; 0 disables")
	probes := fs.String("probe-listen", ":8081", "/healthz and /readyz `address`; 0 disables")
	leader := fs.Bool("leader-elect", false, "elect one replica to issue keys and write status (needed with more than one replica)")
	leaderNS := fs.String("leader-elect-namespace", "", "`namespace` of the leader Lease; empty means the pod's")
	extproc := fs.String("extproc", "unix:///var/run/weir/extproc.sock", "`address` at which Envoy reaches its extproc: unix:///path (a sidecar) or host:port")
	epInsecure := fs.Bool("extproc-insecure", false, "allow a plaintext extproc at a TCP address that is not loopback (only on an otherwise protected network)")
	listen := fs.String("listen", "0.0.0.0:8080", "Envoy listener `address` for client traffic")
	clusterDomain := fs.String("cluster-domain", "cluster.local", "the cluster's DNS `suffix`, for Service URLs")
	spendEvery := fs.Duration("spend-interval", 30*time.Second, "how often spend is read from the limits store (redis) into VirtualKey and Budget status")
	qps := fs.Float64("kube-api-qps", 0, "client-side limit on the controller's API server requests per second; 0 keeps controller-runtime's default (no client-side limit: the API server's priority and fairness paces the controller), negative disables it too. Issuing N new keys takes about 3N requests")
	burst := fs.Int("kube-api-burst", 0, "burst above --kube-api-qps; 0 keeps client-go's default")
	level := fs.String("log-level", "info", "log `level`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	base, err := baseConfig(*cfgPath)
	if err != nil {
		return err
	}
	opts := xds.Options{ExtProcAddress: *extproc, InsecureExtProc: *epInsecure}
	if opts.ListenAddress, opts.ListenPort, err = splitHostPort(*listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	var xdsTLS *manager.XDSTLS
	if *xdsCert != "" || *xdsKey != "" || *xdsClientCA != "" {
		xdsTLS = &manager.XDSTLS{CertFile: *xdsCert, KeyFile: *xdsKey, ClientCAFile: *xdsClientCA}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return manager.Run(ctx, manager.Options{
		XDSListen: *xdsListen, XDSTLS: xdsTLS, XDSInsecure: *xdsInsecure, MetricsListen: *metrics, ProbeListen: *probes,
		LeaderElection: *leader, LeaderElectionNamespace: *leaderNS,
		Envoy: opts, Base: *base, ClusterDomain: *clusterDomain, Logger: log, SpendInterval: *spendEvery,
		CheckBackend: (&backendCheck{}).check,
		KubeAPIQPS:   float32(*qps), KubeAPIBurst: *burst,
	})
}

// errBaseHasRoutes refuses a base config that declares what CRDs own:
// the controller would silently replace it.
var errBaseHasRoutes = errors.New("backends, models and auth.keys come from AIRoutes and VirtualKeys; remove them from the controller's config")

func baseConfig(path string) (*config.Config, error) {
	if path == "" {
		return &config.Config{Version: config.Version}, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if len(cfg.Backends) > 0 || len(cfg.Models) > 0 || len(cfg.Auth.Keys) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errBaseHasRoutes)
	}
	return cfg, nil
}
