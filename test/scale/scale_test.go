// Package scale is the scale benchmark: 2,000 AIRoutes and 10,000
// VirtualKeys applied to a real API server, with the controller in
// process, two real extproc replicas (subprocesses, so their memory is
// real) and an Envoy-like ADS client. It takes minutes; run it with
// `make bench-scale`.
package scale

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/config/wire"
	"github.com/weir-ai/weir/controller/keys"
	"github.com/weir-ai/weir/controller/manager"
	"github.com/weir-ai/weir/controller/reconcile"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xdsserver"
	"github.com/weir-ai/weir/test/envtest"
	"github.com/weir-ai/weir/test/xdstest"
)

// The scale.
const (
	numRoutes     = 2000
	numKeys       = 10000
	numNamespaces = 20
	// writers create objects concurrently, as a few `kubectl apply`
	// or GitOps syncs would.
	writers = 8
	// extprocReplicas are real `weir extproc` processes.
	extprocReplicas = 2
)

// deadline only ends a run that would otherwise hang.
const deadline = 25 * time.Minute

// BenchmarkScale measures, from the moment the last of 2,000 AIRoutes (each
// with its own model and a backend whose credential Secret exists) and
// 10,000 VirtualKeys is created:
//
//   - s-to-keys-issued: until the issuer has created every key's Secret
//     (API-server bound: two writes per key);
//   - s-to-all-acked: until every key is issued and shipped, and every xDS
//     client (both extproc replicas, the Envoy-like client and the size
//     observer) has ACKed a version that carries all 10,000 keys and
//     2,000 models;
//   - s-issued-to-acked: the second minus the first, the controller's and
//     the replicas' own share;
//   - max-push-bytes: the largest DiscoveryResponse any client received
//     (per type in the log);
//   - extprocN-rss-MiB: each replica's VmRSS a few seconds after it
//     ACKed everything (at the ACK and its peak are logged).
//
// "Acked everything" is read from the controller's own records, not
// inferred: the gateway's snapshots say which push first carried the
// whole config (its translation has every key and model), and the xDS
// server's Clients say which push each client has ACKed for every type
// it subscribes to. Push versions are numbered in order, so a client
// whose ACKed push is at or after that one has it all.
//
// go test -run '^$' -bench Scale -benchtime 1x -timeout 30m ./test/scale
func BenchmarkScale(b *testing.B) {
	scheme, err := manager.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	restCfg, c := envtest.StartWith(b, envtest.Options{CRDDirectoryPaths: []string{"../../manifests/crds"}, Scheme: scheme})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	dir := b.TempDir()
	weir := buildWeir(b, dir)

	// The controller, in process.
	type started struct {
		srv *xdsserver.Server
		gw  *reconcile.Gateway
	}
	startedc := make(chan started, 1)
	ready := make(chan net.Addr, 1)
	mctx, mcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- manager.Run(mctx, manager.Options{
			REST: restCfg, XDSListen: "127.0.0.1:0", MetricsListen: "0", ProbeListen: "0",
			Envoy: xds.Options{ExtProcAddress: "unix://" + filepath.Join(dir, "extproc.sock")},
			Base:  config.Config{Version: config.Version},
			// What `weirctl controller` runs with by default:
			// controller-runtime's, no client-side limit (envtest's
			// config would otherwise cap it at 1,000/s).
			KubeAPIQPS: -1,
			Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			Started:    func(s *xdsserver.Server, g *reconcile.Gateway) { startedc <- started{s, g} },
			Ready:      func(a net.Addr) { ready <- a },
		})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		b.Fatalf("controller: %v", err)
	}
	st := <-startedc
	b.Cleanup(func() {
		mcancel()
		if err := <-done; err != nil {
			b.Errorf("controller: %v", err)
		}
	})

	// The replicas and the ADS clients connect before anything is
	// applied, as in a running cluster.
	var procs []*exec.Cmd
	for i := range extprocReplicas {
		procs = append(procs, startExtproc(b, ctx, weir, dir, addr.String(), i))
	}
	sizes := &sizes{max: map[string]int{}}
	connectClient(b, ctx, addr.String(), &corev3.Node{Id: "envoy-0", Cluster: "weir-envoy"}, sizes,
		[]string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.RouteType}, map[string][]string{resourcev3.RouteType: {xds.RouteConfigName}})
	// The observer plays one more extproc replica, so that the sizes of
	// the responses the real ones get are known too.
	connectClient(b, ctx, addr.String(), &corev3.Node{Id: "observer", Cluster: wire.NodeCluster}, sizes,
		[]string{wire.ConfigType, wire.KeyShardType}, nil)
	wantClients := extprocReplicas + 2

	issued := watchIssued(b, ctx, restCfg, numKeys)

	// Apply.
	objs := objects()
	for i := range numNamespaces {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	t0 := time.Now()
	create(b, ctx, c, objs)
	tLast := time.Now()
	b.Logf("created %d objects in %.1fs (%d writers)", len(objs), tLast.Sub(t0).Seconds(), writers)

	// (a) every key issued and shipped: the first push whose config has
	// them all.
	var target *reconcile.Snapshot
	for target == nil {
		snap, newer := st.gw.Last()
		if snap != nil && snap.PushErr == nil && snap.Version != "" && snap.Output.Config != nil &&
			len(snap.Output.Config.Auth.Keys) >= numKeys && len(snap.Output.Config.Models) >= numRoutes {
			target = snap
			break
		}
		select {
		case <-newer:
		case <-ctx.Done():
			keysSeen, models := 0, 0
			if snap != nil && snap.Output.Config != nil {
				keysSeen, models = len(snap.Output.Config.Auth.Keys), len(snap.Output.Config.Models)
			}
			b.Fatalf("no push carried every key and model (last: %d keys, %d models)", keysSeen, models)
		}
	}
	tShipped := time.Now()
	want := pushNumber(target.Version)

	// (b) every client ACKed that push or a later one. Polled: the
	// server's change signal has one reader, the status writer.
	var tAcked time.Time
	for {
		cs := st.srv.Clients()
		n := 0
		for _, cl := range cs {
			if pushNumber(cl.AckedVersion) >= want {
				n++
			}
		}
		if len(cs) >= wantClients && n == len(cs) {
			tAcked = time.Now()
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("clients did not ACK push %s: %+v", target.Version, cs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	var tIssued time.Time
	select {
	case tIssued = <-issued:
	case <-ctx.Done():
		b.Fatal("the issued Secrets were not all seen")
	}
	b.StopTimer()

	atAck := readRSS(b, procs)
	// A replica hands the garbage of an apply back to the OS after it
	// ACKs; the goal is about a replica serving every key, so the
	// reported RSS is read once that is done. Nothing is pushed
	// meanwhile (status patches do not trigger a push).
	time.Sleep(settle)
	rss := readRSS(b, procs)
	b.ReportMetric(tIssued.Sub(tLast).Seconds(), "s-to-keys-issued")
	b.ReportMetric(tAcked.Sub(tLast).Seconds(), "s-to-all-acked")
	b.ReportMetric(tAcked.Sub(tIssued).Seconds(), "s-issued-to-acked")
	b.ReportMetric(float64(sizes.largest()), "max-push-bytes")
	for i, r := range rss {
		b.ReportMetric(r, fmt.Sprintf("extproc%d-rss-MiB", i))
	}
	b.Logf("push %s carried everything, published %.2fs after the last create (%.2fs after the last key was issued); all %d clients ACKed %.2fs later",
		target.Version, tShipped.Sub(tLast).Seconds(), tShipped.Sub(tIssued).Seconds(), wantClients, tAcked.Sub(tShipped).Seconds())
	for _, typ := range sizes.types() {
		b.Logf("largest %s response: %d bytes", typ, sizes.max[typ])
	}
	for i, p := range procs {
		hwm, _ := procStatus(p.Process.Pid, "VmHWM")
		b.Logf("extproc %d: VmRSS %.1f MiB when it ACKed, %.1f MiB %s later, peak (VmHWM) %.1f MiB", i, atAck[i], rss[i], settle, hwm)
	}
}

func nsName(i int) string { return fmt.Sprintf("scale-%02d", i) }

// objects are the credential Secrets, AIRoutes and VirtualKeys, in the
// order they are applied: a route's Secret before it, the routes before
// the keys. Route r lives in namespace r mod numNamespaces; key k uses
// route k mod numRoutes, in that route's namespace, and its model.
func objects() []client.Object {
	var out []client.Object
	for r := range numRoutes {
		ns := nsName(r % numNamespaces)
		secret := fmt.Sprintf("route-%04d-openai", r)
		out = append(out, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: ns},
			StringData: map[string]string{"api-key": fmt.Sprintf("sk-provider-%04d-0123456789abcdef", r)},
		}, &v1alpha1.AIRoute{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("route-%04d", r), Namespace: ns},
			Spec: v1alpha1.AIRouteSpec{
				Models: []v1alpha1.Model{{Name: modelName(r), Aliases: []string{fmt.Sprintf("alias-%04d", r)}, Backends: []string{"openai"}, ContextWindow: 128000}},
				Backends: []v1alpha1.Backend{{
					Name: "openai", Provider: "openai",
					Endpoint:   &v1alpha1.Endpoint{External: &v1alpha1.ExternalEndpoint{Hostname: fmt.Sprintf("r%04d.models.example.com", r)}, BasePath: "/v1"},
					Credential: &v1alpha1.Credential{SecretKeyRef: &v1alpha1.SecretKeyRef{Name: secret, Key: "api-key"}},
				}},
			},
		})
	}
	for k := range numKeys {
		r := k % numRoutes
		out = append(out, &v1alpha1.VirtualKey{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("key-%05d", k), Namespace: nsName(r % numNamespaces)},
			Spec: v1alpha1.VirtualKeySpec{
				Routes: []v1alpha1.RouteReference{{Name: fmt.Sprintf("route-%04d", r)}},
				Models: []string{modelName(r)},
				Limits: v1alpha1.Limits{MaxBudget: "100", BudgetDuration: "30d", RPMLimit: 600},
				Team:   fmt.Sprintf("team-%d", k%50),
			},
		})
	}
	return out
}

func modelName(r int) string { return fmt.Sprintf("model-%04d", r) }

// create applies objs with a few concurrent writers, each taking the next
// object, so the order is kept roughly.
func create(b *testing.B, ctx context.Context, c client.Client, objs []client.Object) {
	next := make(chan client.Object)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for o := range next {
				if err := c.Create(ctx, o); err != nil {
					errc <- fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
					return
				}
			}
		})
	}
	func() {
		defer close(next)
		for _, o := range objs {
			select {
			case next <- o:
			case err := <-errc:
				b.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
}

// buildWeir builds the weir binary once into dir.
func buildWeir(b *testing.B, dir string) string {
	out := filepath.Join(dir, "weir")
	cmd := exec.Command("go", "build", "-o", out, "github.com/weir-ai/weir/extproc/cmd/weir")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build weir: %v\n%s", err, msg)
	}
	return out
}

// startExtproc runs one `weir extproc` replica fed over xDS; its log goes
// to a file in dir, named in a failure.
func startExtproc(b *testing.B, ctx context.Context, weir, dir, xdsAddr string, i int) *exec.Cmd {
	logPath := filepath.Join(dir, fmt.Sprintf("extproc-%d.log", i))
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, weir, "extproc",
		"--xds-server", xdsAddr, "--xds-insecure", "--xds-node-id", fmt.Sprintf("extproc-%d", i),
		"--listen", "unix://"+filepath.Join(dir, fmt.Sprintf("extproc-%d.sock", i)),
		"--admin", "", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatalf("start extproc: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if b.Failed() {
			if msg, err := os.ReadFile(logPath); err == nil {
				b.Logf("extproc %d log:\n%s", i, tail(string(msg), 4096))
			}
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// sizes records the largest response per type across clients.
type sizes struct {
	mu  sync.Mutex
	max map[string]int
}

func (s *sizes) add(typ string, n int) {
	s.mu.Lock()
	s.max[typ] = max(s.max[typ], n)
	s.mu.Unlock()
}

func (s *sizes) largest() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.max {
		n = max(n, v)
	}
	return n
}

func (s *sizes) types() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.max {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// connectClient subscribes node to types and ACKs every response as it
// arrives, recording its size (proto.Size of the DiscoveryResponse).
func connectClient(b *testing.B, ctx context.Context, addr string, node *corev3.Node, sz *sizes, types []string, names map[string][]string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cl, err := xdstest.Dial(ctx, conn, node)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); cl.Close(); wg.Wait(); conn.Close() })
	for _, typ := range types {
		if err := cl.Subscribe(typ, names[typ]...); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				r, err := cl.Next(ctx, typ)
				if err != nil {
					return
				}
				sz.add(typ, proto.Size(r))
				if err := cl.ACK(r); err != nil {
					return
				}
			}
		})
	}
}

// watchIssued returns a channel that receives the time the want-th
// issued key Secret was seen created.
func watchIssued(b *testing.B, ctx context.Context, cfg *rest.Config, want int) <-chan time.Time {
	wc, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := wc.Watch(ctx, &corev1.SecretList{}, client.HasLabels{keys.LabelVirtualKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	out := make(chan time.Time, 1)
	go func() {
		seen := map[string]bool{}
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added {
				continue
			}
			s, ok := ev.Object.(*corev1.Secret)
			if !ok {
				continue
			}
			seen[s.Namespace+"/"+s.Name] = true
			if len(seen) == want {
				out <- time.Now()
				return
			}
		}
	}()
	return out
}

// pushNumber is the sequence number in a push version ("<instance>-N");
// -1 for none.
func pushNumber(v string) int64 {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// settle is how long after the last ACK the replicas' RSS is read.
const settle = 5 * time.Second

// readRSS reads each process's VmRSS in MiB.
func readRSS(b *testing.B, procs []*exec.Cmd) []float64 {
	out := make([]float64, len(procs))
	for i, p := range procs {
		var err error
		if out[i], err = procStatus(p.Process.Pid, "VmRSS"); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// procStatus reads a "kB" field of /proc/<pid>/status, in MiB.
func procStatus(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
