// Package manager runs Weir's Kubernetes controller: the controller-runtime
// manager with the key issuer, the gateway (CRDs → config → xDS) and the
// status writer, and the ADS gRPC server Envoy and the extproc replicas
// connect to.
//
// The gateway and the xDS server run on every replica (they only read
// the cluster), so any replica can serve xDS; the issuer and the status
// writer write, so they run on the elected leader only.
package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/redisconn"
	"github.com/weir-ai/weir/controller/reconcile"
	"github.com/weir-ai/weir/controller/spendstatus"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xdsserver"
)

// The controller's permissions, from which `make generate` writes
// manifests/rbac/role.yaml. Secrets: read to resolve credentials and
// issued keys; create and update only for the keys' Secrets.
//
// +kubebuilder:rbac:groups=weir.dev,resources=airoutes;virtualkeys;budgets,verbs=get;list;watch
// +kubebuilder:rbac:groups=weir.dev,resources=airoutes/status;virtualkeys/status;budgets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch

// Options configure [Run].
type Options struct {
	// REST is the API server connection; nil means ctrl.GetConfig
	// (in-cluster, or $KUBECONFIG).
	REST *rest.Config
	// XDSListen is where the ADS server listens, host:port.
	XDSListen string
	// XDSTLS serves ADS over TLS (mutual with a client CA). Without it
	// the listener must be loopback or XDSInsecure set.
	XDSTLS      *XDSTLS
	XDSInsecure bool
	// MetricsListen and ProbeListen serve /metrics and /healthz, /readyz;
	// "0" disables each.
	MetricsListen, ProbeListen string
	// LeaderElection makes replicas elect one writer; LeaderElectionNamespace
	// holds its Lease (empty: the pod's namespace).
	LeaderElection          bool
	LeaderElectionNamespace string
	// Envoy are the deployment facts of the Envoy resources (the extproc's
	// address, TLS, listen port).
	Envoy xds.Options
	// Base holds what CRDs do not: limits store, spend, logging, pricing.
	Base config.Config
	// ClusterDomain builds Service URLs; empty means cluster.local.
	ClusterDomain string
	// CheckBackend is the data plane's check of one backend; the command
	// passes the extproc's provider registry (see weirctl).
	CheckBackend func(*config.Backend) error
	Logger       *slog.Logger
	// SpendInterval is how often spend is read into status; zero means
	// 30 s. Spend is read only with limits.store redis in Base.
	SpendInterval time.Duration
	// KubeAPIQPS and KubeAPIBurst are the client-side rate limit on the
	// controller's requests to the API server, in place of REST's where
	// non-zero; a negative KubeAPIQPS disables the limit (the API
	// server's priority and fairness alone then paces the controller).
	// Zero keeps REST's: ctrl.GetConfig's has no client-side limit.
	// Applying N new VirtualKeys costs about 2N writes to issue their
	// keys and N status patches, so a low limit (client-go's own default
	// is 5/s) makes a bulk apply take minutes.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// Ready, when set, is told the bound xDS address (tests).
	Ready func(xdsAddr net.Addr)
	// Started, when set, is given the xDS server and the gateway before
	// they run, for benchmarks that follow pushes and ACKs in process.
	Started func(*xdsserver.Server, *reconcile.Gateway)
}

// Scheme is the types the controller reads: Kubernetes' and Weir's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.XDSListen == "" {
		return errors.New("xds listen address is required")
	}
	restCfg := o.REST
	if restCfg == nil {
		var err error
		if restCfg, err = ctrl.GetConfig(); err != nil {
			return fmt.Errorf("kubernetes config: %w", err)
		}
	}
	restCfg = rateLimited(restCfg, o.KubeAPIQPS, o.KubeAPIBurst)
	// controller-runtime and client-go log through logr; send it to the
	// same handler as everything else.
	ctrl.SetLogger(logr.FromSlogHandler(o.Logger.Handler()))
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOptions(),
		Metrics:                 metricsserver.Options{BindAddress: or(o.MetricsListen, ":8080")},
		HealthProbeBindAddress:  or(o.ProbeListen, ":8081"),
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "weir-controller.weir.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// A replica that loses the lease stops at once instead of writing
		// beside the new leader.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	srv, err := xdsserver.New(xdsserver.Options{Envoy: o.Envoy, Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("xds server: %w", err)
	}
	gw := &reconcile.Gateway{Client: mgr.GetClient(), Push: srv, Metrics: controllerMetrics(), Base: o.Base, ClusterDomain: o.ClusterDomain, CheckBackend: o.CheckBackend, Log: o.Logger}
	if err := gw.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&reconcile.Issuer{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	sw := &reconcile.StatusWriter{Client: mgr.GetClient(), Gateway: gw, Replicas: replicas{srv}, Log: o.Logger, SpendInterval: o.SpendInterval}
	if l := o.Base.Limits; l.Store == "redis" && l.Redis != nil {
		ro, err := redisconn.Options(l.Redis)
		if err != nil {
			return err
		}
		rc := redis.NewClient(ro)
		defer rc.Close()
		if sw.Spend, err = spendstatus.New(rc, &o.Base.Limits, nil); err != nil {
			return err
		}
	} else {
		o.Logger.Info("limits store is not redis: spend is not shown in status (each extproc replica counts in its own memory)")
	}
	if err := mgr.Add(sw); err != nil {
		return err
	}
	tc, err := serverTLS(o.XDSTLS, o.XDSListen, o.XDSInsecure)
	if err != nil {
		return err
	}
	if tc == nil && !loopback(o.XDSListen) {
		o.Logger.Warn("serving xDS in plaintext: the extproc's stream carries provider credentials; keep the port reachable only by the gateway pods (the base's NetworkPolicy) or serve TLS", "listen", o.XDSListen)
	}
	lis, err := net.Listen("tcp", o.XDSListen)
	if err != nil {
		return fmt.Errorf("xds listen: %w", err)
	}
	if err := mgr.Add(&grpcRunnable{srv: srv, lis: lis, log: o.Logger, tls: tc}); err != nil {
		return err
	}
	// Ready once the first config was pushed: before that an Envoy or
	// extproc that connects would get nothing to serve.
	if err := mgr.AddReadyzCheck("pushed", func(*http.Request) error {
		if s, _ := gw.Last(); s == nil {
			return errors.New("no config pushed yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if o.Started != nil {
		o.Started(srv, gw)
	}
	if o.Ready != nil {
		o.Ready(lis.Addr())
	}
	o.Logger.Info("weir controller starting", "xds", lis.Addr().String(), "leader_election", o.LeaderElection)
	return mgr.Start(ctx)
}

var (
	metricsOnce sync.Once
	metrics     *reconcile.Metrics
)

// controllerMetrics registers the controller's series once per process
// with controller-runtime's registry, which the manager serves.
func controllerMetrics() *reconcile.Metrics {
	metricsOnce.Do(func() { metrics = reconcile.NewMetrics(ctrlmetrics.Registry) })
	return metrics
}

// cacheOptions drop managedFields from every cached object: the
// controller never reads them, and deep-copying them was the largest part
// of every gateway pass's List at 10,000 VirtualKeys. Writes are
// unaffected: an update without managedFields keeps the server's.
func cacheOptions() cache.Options {
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// grpcRunnable serves ADS on every replica.
type grpcRunnable struct {
	srv *xdsserver.Server
	lis net.Listener
	log *slog.Logger
	tls *tls.Config // nil: plaintext
}

func (g *grpcRunnable) NeedLeaderElection() bool { return false }

func (g *grpcRunnable) Start(ctx context.Context) error {
	opts := []grpc.ServerOption{
		// A full key set is one response of several MiB.
		grpc.MaxSendMsgSize(64 << 20),
		// Envoy and the extproc keep their ADS stream open for days and
		// ping it; do not punish that.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if g.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(g.tls)))
	}
	gs := grpc.NewServer(opts...)
	g.srv.Register(gs)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(g.lis) }()
	select {
	case <-ctx.Done():
		gs.GracefulStop()
		return nil
	case err := <-errc:
		return fmt.Errorf("xds server: %w", err)
	}
}

var _ manager.LeaderElectionRunnable = (*grpcRunnable)(nil)

// replicas adapts the xDS server's clients to what the status writer
// reads.
type replicas struct{ s *xdsserver.Server }

func (r replicas) Changed() <-chan struct{} { return r.s.Changed() }

func (r replicas) Replicas() []reconcile.Replica {
	cs := r.s.Clients()
	out := make([]reconcile.Replica, 0, len(cs))
	for _, c := range cs {
		rep := reconcile.Replica{Node: c.Node, Kind: c.Kind, Acked: c.AckedVersion}
		if c.Nacked != nil {
			rep.Nacked, rep.NackMessage = c.Nacked.Version, c.Nacked.Message
		}
		out = append(out, rep)
	}
	return out
}

// rateLimited returns cfg with qps and burst in place of its own where
// they are set (non-zero), as a copy: the caller's config may serve other
// clients.
func rateLimited(cfg *rest.Config, qps float32, burst int) *rest.Config {
	if qps == 0 && burst == 0 {
		return cfg
	}
	c := rest.CopyConfig(cfg)
	if qps != 0 {
		c.QPS = qps
	}
	if burst != 0 {
		c.Burst = burst
	}
	return c
}
