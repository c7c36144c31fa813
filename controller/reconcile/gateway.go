package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/keys"
	"github.com/weir-ai/weir/controller/translate"
)

// Pusher is the xDS server as the gateway sees it: it takes a whole config
// and serves it to Envoy and every extproc replica as one version.
type Pusher interface {
	Push(ctx context.Context, cfg *config.Config) (version string, err error)
}

// Snapshot is the outcome of one gateway pass, for the status writer.
type Snapshot struct {
	// Seq numbers the passes that pushed, in order; Version is what the
	// xDS server called that push.
	Seq     uint64
	Version string
	// Output is the translation: the config and each object's own
	// conditions.
	Output translate.Output
	// PushErr is set when the xDS server refused the config (the previous
	// version keeps being served).
	PushErr error
	// Issued is what each VirtualKey's Secret says about its key, for the
	// key's status.
	Issued map[types.NamespacedName]keys.Issued
}

// Gateway turns every Weir object, and the Secrets and Services they
// name, into one extproc config and pushes it. Every change of any
// watched object maps to the same request, so a burst of changes (a
// `kubectl apply` of a thousand objects) coalesces into few passes. It
// only reads the cluster, so it runs on every controller replica: each
// serves xDS to the clients connected to it.
type Gateway struct {
	Client client.Reader
	Push   Pusher
	// Base holds the settings that are not in CRDs (limits store, spend,
	// logging, pricing): the controller's own config file.
	Base          config.Config
	ClusterDomain string
	// CheckBackend is the data plane's check of one backend
	// (translate.Input.CheckBackend); nil checks what config.Validate does.
	CheckBackend func(*config.Backend) error
	Clock        func() time.Time
	Log          *slog.Logger
	// Metrics, when set, records each pass.
	Metrics *Metrics
	// Resync re-translates this often even without changes, so that
	// expiries show in status; zero means a minute.
	Resync time.Duration

	mu   sync.Mutex
	last *Snapshot
	seq  uint64
	// newer is closed when the next snapshot is published; every caller
	// of Last until then shares it.
	newer chan struct{}
}

// all is the one request every event maps to.
var all = ctrl.Request{NamespacedName: types.NamespacedName{Name: "all"}}

func toAll(context.Context, client.Object) []ctrl.Request { return []ctrl.Request{all} }

// SetupWithManager registers the gateway.
func (g *Gateway) SetupWithManager(mgr ctrl.Manager) error {
	no := false
	b := ctrl.NewControllerManagedBy(mgr).
		Named("gateway").
		WithOptions(controller.Options{NeedLeaderElection: &no, MaxConcurrentReconciles: 1})
	for _, ix := range []struct {
		name string
		fn   client.IndexerFunc
	}{{indexSecrets, routeSecrets}, {indexServices, routeServices}} {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.AIRoute{}, ix.name, ix.fn); err != nil {
			return fmt.Errorf("index AIRoutes by %s: %w", ix.name, err)
		}
	}
	for _, w := range gatewayWatches() {
		b = b.Watches(w.obj, handler.EnqueueRequestsFromMapFunc(g.mapper(w.obj)), builder.WithPredicates(w.pred))
	}
	return b.Complete(g)
}

// mapper maps an event to the one request: every event of Weir's kinds,
// and those of Secrets and Services the translation reads.
func (g *Gateway) mapper(kind client.Object) handler.MapFunc {
	switch kind.(type) {
	case *corev1.Secret, *corev1.Service:
		return func(ctx context.Context, obj client.Object) []ctrl.Request {
			if !relevant(ctx, g.Client, obj) {
				return nil
			}
			return []ctrl.Request{all}
		}
	}
	return toAll
}

type watch struct {
	obj  client.Object
	pred predicate.Predicate
}

// gatewayWatches are the kinds translated, each with the updates that
// matter. Weir's kinds count only spec changes (a new generation):
// translation reads no status, and the status writer and the issuer
// patch every object's status at least once after it is created (12,000
// patches for 2,000 AIRoutes and 10,000 VirtualKeys), each of which
// would otherwise cost a full translation. Secrets and Services have no
// generation, so every change counts.
func gatewayWatches() []watch {
	spec := predicate.GenerationChangedPredicate{}
	every := predicate.Funcs{}
	return []watch{
		{&v1alpha1.AIRoute{}, spec}, {&v1alpha1.VirtualKey{}, spec}, {&v1alpha1.Budget{}, spec},
		{&corev1.Secret{}, every}, {&corev1.Service{}, every},
	}
}

// Reconcile translates everything and pushes it.
func (g *Gateway) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	in, issued, err := g.input(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	out := translate.Translate(in)
	took := time.Since(start)
	snap := &Snapshot{Output: out, Issued: issued}
	snap.Version, snap.PushErr = g.Push.Push(ctx, out.Config)
	g.Metrics.pass(took, out, snap.PushErr)
	if snap.PushErr != nil && g.Log != nil {
		g.Log.Error("xDS server refused the config; the previous version is still served", "error", snap.PushErr)
	}
	g.publish(snap)
	resync := g.Resync
	if resync == 0 {
		resync = time.Minute
	}
	return ctrl.Result{RequeueAfter: resync}, nil
}

func (g *Gateway) input(ctx context.Context) (translate.Input, map[types.NamespacedName]keys.Issued, error) {
	now := time.Now
	if g.Clock != nil {
		now = g.Clock
	}
	in := translate.Input{Base: g.Base, Now: now(), ClusterDomain: g.ClusterDomain, CheckBackend: g.CheckBackend, Issued: map[types.NamespacedName]translate.IssuedKey{}}
	if in.ClusterDomain == "" {
		in.ClusterDomain = "cluster.local"
	}
	var routes v1alpha1.AIRouteList
	var vks v1alpha1.VirtualKeyList
	var budgets v1alpha1.BudgetList
	var secrets corev1.SecretList
	var services corev1.ServiceList
	for _, l := range []client.ObjectList{&routes, &vks, &budgets, &secrets, &services} {
		if err := g.Client.List(ctx, l); err != nil {
			return in, nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	in.Routes, in.Keys, in.Budgets = routes.Items, vks.Items, budgets.Items
	in.Secrets, in.Services = secrets.Items, services.Items
	issued := make(map[types.NamespacedName]keys.Issued, len(vks.Items))
	uids := make(map[types.UID]types.NamespacedName, len(vks.Items))
	for i := range vks.Items {
		uids[vks.Items[i].UID] = client.ObjectKeyFromObject(&vks.Items[i])
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		vk, ok := issuedFor(s, uids)
		if !ok {
			continue
		}
		is, ok := keys.Read(s, in.Now)
		if !ok {
			continue
		}
		ik := translate.IssuedKey{Hash: is.Hash}
		for _, p := range is.Previous {
			ik.Previous = append(ik.Previous, translate.PreviousKey{Hash: p.Hash, ExpiresAt: p.ExpiresAt})
		}
		in.Issued[vk] = ik
		issued[vk] = is
	}
	return in, issued, nil
}

// issuedFor names the VirtualKey a Secret holds the key of: one the issuer
// wrote (the expected name, controlled by that VirtualKey's UID). A Secret
// that merely carries the label is not trusted, since anyone who may
// write Secrets in the namespace could add it.
func issuedFor(s *corev1.Secret, uids map[types.UID]types.NamespacedName) (types.NamespacedName, bool) {
	for _, o := range s.OwnerReferences {
		if o.Controller == nil || !*o.Controller || o.Kind != "VirtualKey" {
			continue
		}
		vk, ok := uids[o.UID]
		if ok && vk.Namespace == s.Namespace && keys.SecretName(vk.Name) == s.Name {
			return vk, true
		}
	}
	return types.NamespacedName{}, false
}

func (g *Gateway) publish(s *Snapshot) {
	g.mu.Lock()
	g.seq++
	s.Seq = g.seq
	g.last = s
	if g.newer != nil {
		close(g.newer)
		g.newer = nil
	}
	g.mu.Unlock()
}

// Last returns the latest snapshot (nil before the first pass) and a
// channel closed when a newer one is published.
func (g *Gateway) Last() (*Snapshot, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.newer == nil {
		g.newer = make(chan struct{})
	}
	return g.last, g.newer
}
