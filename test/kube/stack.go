// Package kube assembles a whole Kubernetes-configured Weir in one
// process, for end-to-end tests and the SDK suites (cmd/kubestack): a
// real kube-apiserver and etcd with Weir's CRDs (test/envtest), the
// controller (controller/manager) with its xDS server on loopback, the
// fake providers, and pods of the gateway. Each pod is what
// manifests/gateway.yaml deploys: an extproc replica (extproc/daemon)
// fed by the controller over ADS, and beside it an Envoy, played by the
// harness (test/harness) as an xDS client of the same controller, that
// fetches LDS, RDS and CDS and is rebuilt from each new version. Objects
// are applied the way `kubectl apply --server-side -f` does ([Apply]).
//
// What is not real:
//   - Cluster DNS. The harness's upstream transport dials
//     <service>.<namespace>.svc.cluster.local:<port> to the fake provider
//     that plays that Service ([Upstream]); no other name resolves.
//   - The pod's filesystem. The controller tells every Envoy the
//     extproc is at [ExtProcAddress], one path for all pods as in the
//     manifests; each pod's harness dials that path to its own replica's
//     socket, since in-process pods share one filesystem.
//
// Everything else is the production code: the CRDs and their CEL rules,
// the controller's reconcilers, translation, status writer and xDS
// server, the extproc's xDS client and request path, and the
// harness's emulation of Envoy over the resources the controller serves.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/manager"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/extproc/daemon"
	"github.com/weir-ai/weir/test/envtest"
	"github.com/weir-ai/weir/test/fakeprovider"
	"github.com/weir-ai/weir/test/harness"
	"github.com/weir-ai/weir/test/xdstest"
)

// ExtProcAddress is where the controller tells Envoy its extproc is, as
// in manifests/controller/deployment.yaml.
const ExtProcAddress = "unix:///var/run/weir/extproc.sock"

// Upstream is a Service the stack plays with a fake provider.
type Upstream struct {
	Namespace, Service string
	Port               int32
	Kind               fakeprovider.Kind
	// Key, when set, is the only API key the fake accepts: the value of
	// the credential Secret, so a request that passes proves the
	// controller shipped it.
	Key string
}

// DevUpstreams are the Services of testdata/dev.yaml, each played by the
// fake of its provider and requiring the key its Secret holds, and
// team-research/vllm-research of examples/kubernetes/namespace-key.yaml
// (an OpenAI-compatible server without a key).
var DevUpstreams = []Upstream{
	{"weir-dev", "fake-openai", 80, fakeprovider.OpenAI, "sk-fake-openai"},
	{"weir-dev", "fake-anthropic", 80, fakeprovider.Anthropic, "sk-ant-fake"},
	{"weir-dev", "fake-azure", 80, fakeprovider.Azure, ""},
	{"weir-dev", "fake-gemini", 80, fakeprovider.Gemini, ""},
	{"weir-dev", "fake-bedrock", 80, fakeprovider.Bedrock, ""},
	{"weir-dev", "fake-vertex", 80, fakeprovider.Vertex, ""},
	{"team-research", "vllm-research", 8000, fakeprovider.OpenAI, ""},
}

// Options configure [Start].
type Options struct {
	// Root is the repository root (manifests/crds is read from it);
	// empty means the module root above the working directory.
	Root string
	// Pods is how many gateway pods run; zero means 2.
	Pods int
	// Upstreams are the Services played by fakes; nil means DevUpstreams.
	Upstreams []Upstream
	Logger    *slog.Logger
}

// Stack is a running cluster with Weir installed.
type Stack struct {
	REST    *rest.Config
	Client  client.Client
	XDSAddr string
	Pods    []*Pod
	// Fakes by "namespace/service".
	Fakes map[string]*fakeprovider.Server

	env     *envtest.Env
	cancel  context.CancelFunc
	ctrlErr chan error
	dns     clusterDNS
	tmp     string
	log     *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Start brings the stack up: it returns once the controller serves xDS
// and every pod's extproc is listening. Pods serve once the controller
// pushed a config they accept; wait for objects' Ready conditions.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Pods == 0 {
		o.Pods = 2
	}
	if o.Upstreams == nil {
		o.Upstreams = DevUpstreams
	}
	if o.Root == "" {
		if o.Root, err = moduleRoot(); err != nil {
			return nil, err
		}
	}
	s := &Stack{Fakes: map[string]*fakeprovider.Server{}, dns: clusterDNS{}, log: o.Logger, ctrlErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	for _, u := range o.Upstreams {
		f := fakeprovider.New(u.Kind)
		f.RequireKey(u.Key)
		addr, err := f.Start("127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s.Fakes[u.Namespace+"/"+u.Service] = f
		s.dns[ServiceHost(u.Namespace, u.Service, u.Port)] = strings.TrimPrefix(addr, "http://")
	}
	if s.tmp, err = os.MkdirTemp("", "weir-kube-"); err != nil {
		return nil, err
	}
	scheme, err := manager.Scheme()
	if err != nil {
		return nil, err
	}
	if s.env, err = envtest.Launch(envtest.Options{CRDDirectoryPaths: []string{filepath.Join(o.Root, "manifests", "crds")}, Scheme: scheme}); err != nil {
		return nil, err
	}
	s.REST, s.Client = s.env.REST, s.env.Client

	ctx, s.cancel = context.WithCancel(ctx)
	ready := make(chan net.Addr, 1)
	go func() {
		s.ctrlErr <- manager.Run(ctx, manager.Options{
			REST: s.REST, XDSListen: "127.0.0.1:0", MetricsListen: "0", ProbeListen: "0",
			Envoy:         xds.Options{ExtProcAddress: ExtProcAddress},
			Base:          config.Config{Version: config.Version},
			ClusterDomain: ClusterDomain,
			Logger:        o.Logger.With("component", "controller"),
			Ready:         func(a net.Addr) { ready <- a },
		})
	}()
	select {
	case a := <-ready:
		s.XDSAddr = a.String()
	case err := <-s.ctrlErr:
		s.ctrlErr <- err // for Close
		return nil, fmt.Errorf("controller: %w", err)
	}
	for i := range o.Pods {
		p, err := s.startPod(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("pod %d: %w", i, err)
		}
		s.Pods = append(s.Pods, p)
	}
	return s, nil
}

// Pod is one gateway pod: an extproc replica and the Envoy beside it.
type Pod struct {
	// Name is the replica's and the Envoy's node id suffix.
	Name string
	// URL is the pod's Envoy listener, "http://127.0.0.1:PORT".
	URL string

	plane   *plane
	socket  string
	http    *http.Server
	epDone  chan error
	epStop  context.CancelFunc
	xdsConn *grpc.ClientConn
	wg      sync.WaitGroup
}

func (s *Stack) startPod(ctx context.Context, i int) (*Pod, error) {
	p := &Pod{Name: fmt.Sprintf("gateway-%d", i), epDone: make(chan error, 1)}
	dir := filepath.Join(s.tmp, p.Name)
	p.socket = filepath.Join(dir, "extproc.sock")
	log := s.log.With("pod", p.Name)

	epCtx, stop := context.WithCancel(ctx)
	p.epStop = stop
	listening := make(chan struct{})
	go func() {
		p.epDone <- daemon.Run(epCtx, daemon.Options{
			XDSServer: s.XDSAddr, XDSInsecure: true, XDSNodeID: "extproc-" + p.Name,
			Listen:       "unix://" + p.socket,
			DrainTimeout: 5 * time.Second,
			Logger:       log.With("component", "extproc"),
			Ready:        func(net.Addr, net.Addr, net.Addr) { close(listening) },
		})
	}()
	select {
	case <-listening:
	case err := <-p.epDone:
		stop()
		return nil, fmt.Errorf("extproc: %w", err)
	}

	conn, err := grpc.NewClient(s.XDSAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		p.close()
		return nil, err
	}
	p.xdsConn = conn
	cl, err := xdstest.Dial(ctx, conn, &corev3.Node{Id: "envoy-" + p.Name, Cluster: "weir-envoy"})
	if err != nil {
		p.close()
		return nil, err
	}
	transport := s.dns.transport()
	p.plane = newPlane(cl, func(res *xds.Resources) (*harness.Harness, error) {
		return harness.New(res, harness.Options{
			Logger:            log.With("component", "envoy"),
			ExtProcDialer:     p.dialExtProc,
			UpstreamTransport: transport,
		})
	}, log)
	p.wg.Go(func() { _ = p.plane.run(ctx) })

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.close()
		return nil, err
	}
	p.URL = "http://" + lis.Addr().String()
	p.http = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	p.wg.Go(func() { _ = p.http.Serve(lis) })
	return p, nil
}

// dialExtProc dials the extproc the controller names, [ExtProcAddress],
// which in this pod is its own replica's socket.
func (p *Pod) dialExtProc(ctx context.Context, addr string) (net.Conn, error) {
	if addr != ExtProcAddress {
		return nil, fmt.Errorf("dial %s: the pod has only %s", addr, ExtProcAddress)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", p.socket)
}

// ServeHTTP is the pod's Envoy listener. Before the first config it
// answers 503, as an Envoy whose listener is still warming refuses the
// connection.
func (p *Pod) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := p.plane.harness()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"message":"the gateway has no config yet","type":"server_error","code":"not_ready"}}`))
		return
	}
	h.ServeHTTP(w, r)
}

func (p *Pod) close() error {
	var errs []error
	if p.http != nil {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, p.http.Shutdown(sctx))
		c()
	}
	if p.plane != nil {
		p.plane.cl.Close()
	}
	if p.xdsConn != nil {
		errs = append(errs, p.xdsConn.Close())
	}
	p.wg.Wait()
	if p.plane != nil {
		p.plane.close()
	}
	p.epStop()
	errs = append(errs, <-p.epDone)
	return errors.Join(errs...)
}

// Close stops the pods, the controller, the API server and the fakes.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, p := range s.Pods {
			errs = append(errs, p.close())
		}
		if s.cancel != nil {
			s.cancel()
			errs = append(errs, <-s.ctrlErr)
		}
		if s.env != nil {
			errs = append(errs, s.env.Stop())
		}
		for _, f := range s.Fakes {
			_ = f.Close()
		}
		if s.tmp != "" {
			errs = append(errs, os.RemoveAll(s.tmp))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// moduleRoot is the repository root, found from the working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := envtest.ModuleRoot(wd)
	if err != nil {
		return "", fmt.Errorf("%w; set Options.Root", err)
	}
	return root, nil
}
