package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/keys"
	"github.com/weir-ai/weir/controller/spendstatus"
	"github.com/weir-ai/weir/controller/translate"
)

// Replica is one xDS client (Envoy or an extproc) as the status writer
// sees it: the last version it ACKed and the last one it NACKed.
type Replica struct {
	Node, Kind  string
	Acked       string
	Nacked      string
	NackMessage string
}

// Replicas reports the xDS clients' progress.
type Replicas interface {
	Replicas() []Replica
	// Changed is signalled when a client connects, leaves, ACKs or NACKs.
	Changed() <-chan struct{}
}

// StatusWriter writes every Weir object's conditions: Accepted and
// ResolvedRefs from the translation, Programmed from the replicas' ACKs
// of the first version that carried the object's current generation, and
// Ready as their summary. It writes, so it runs on the leader; its view
// of the replicas is the clients connected to this controller replica
// (run one replica, or put the xDS Service in front of the leader only).
type StatusWriter struct {
	Client   client.Client
	Gateway  *Gateway
	Replicas Replicas
	Log      *slog.Logger
	// Spend reads the current period's spend of keys and Budgets; nil
	// leaves spend out of status (an in-memory limits store lives in
	// each extproc and cannot be read from here).
	Spend SpendReader
	// SpendInterval is how often spend is read; zero means 30 s.
	SpendInterval time.Duration
	// Clock stamps spend readings; nil means time.Now.
	Clock func() time.Time

	spend map[translate.Object]spendstatus.Result

	// since remembers, per object, the generation last seen and the first
	// push that carried it.
	since map[translate.Object]since
	seqOf map[string]uint64
}

type since struct {
	gen int64
	seq uint64
}

// SpendReader reads spend from the limits store.
type SpendReader interface {
	Read(ctx context.Context, qs []spendstatus.Query) ([]spendstatus.Result, error)
}

// DefaultSpendInterval is how often spend reaches status.
const DefaultSpendInterval = 30 * time.Second

// NeedLeaderElection makes the manager run the writer on the leader only.
func (w *StatusWriter) NeedLeaderElection() bool { return true }

// Start writes statuses after every gateway pass and every change in the
// replicas' progress, until ctx ends.
func (w *StatusWriter) Start(ctx context.Context) error {
	w.since = map[translate.Object]since{}
	w.seqOf = map[string]uint64{}
	w.spend = map[translate.Object]spendstatus.Result{}
	var changed <-chan struct{}
	if w.Replicas != nil {
		changed = w.Replicas.Changed()
	}
	var tick <-chan time.Time
	if w.Spend != nil {
		every := w.SpendInterval
		if every <= 0 {
			every = DefaultSpendInterval
		}
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	readSpend := true
	for {
		snap, newer := w.Gateway.Last()
		if snap != nil {
			if readSpend && w.Spend != nil {
				if err := w.readSpend(ctx, snap); err != nil && ctx.Err() == nil && w.Log != nil {
					w.Log.Warn("reading spend for status; keeping the last reading", "error", err)
				}
				readSpend = false
			}
			if err := w.write(ctx, snap); err != nil && ctx.Err() == nil && w.Log != nil {
				w.Log.Error("writing status", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-newer:
		case <-changed:
		case <-tick:
			readSpend = true
		}
	}
}

// readSpend reads every key's and Budget's spend in one batch.
func (w *StatusWriter) readSpend(ctx context.Context, snap *Snapshot) error {
	var objs []translate.Object
	var qs []spendstatus.Query
	for o := range snap.Output.Status {
		h, ok := holder(o)
		if !ok || o.Kind == translate.KindAIRoute {
			continue
		}
		if err := w.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, h.obj); err != nil {
			continue
		}
		q, ok := spendQuery(h.obj)
		if !ok {
			continue
		}
		objs = append(objs, o)
		qs = append(qs, q)
	}
	res, err := w.Spend.Read(ctx, qs)
	if err != nil {
		return err
	}
	fresh := make(map[translate.Object]spendstatus.Result, len(objs))
	for i, o := range objs {
		fresh[o] = res[i]
	}
	w.spend = fresh
	return nil
}

// spendQuery names the budget counter of a VirtualKey (its UID, the
// limits_id the gateway ships) or a Budget (its subject).
func spendQuery(obj client.Object) (spendstatus.Query, bool) {
	var l v1alpha1.Limits
	var q spendstatus.Query
	switch o := obj.(type) {
	case *v1alpha1.VirtualKey:
		l, q.Scope, q.ID = o.Spec.Limits, "key", string(o.UID)
	case *v1alpha1.Budget:
		l = o.Spec.Limits
		switch o.Spec.Subject.Kind {
		case v1alpha1.SubjectUser:
			q.Scope, q.ID = "user", o.Spec.Subject.Name
		case v1alpha1.SubjectTeam:
			q.Scope, q.ID = "team", o.Spec.Subject.Name
		case v1alpha1.SubjectOrganization:
			q.Scope, q.ID = "org", o.Spec.Subject.Name
		default:
			q.Scope = "global"
		}
	default:
		return q, false
	}
	q.MaxBudget, _ = strconv.ParseFloat(string(l.MaxBudget), 64)
	q.SoftBudget, _ = strconv.ParseFloat(string(l.SoftBudget), 64)
	q.Period = string(l.BudgetDuration)
	return q, q.MaxBudget > 0 || q.SoftBudget > 0
}

// spendFields sets a key's or Budget's spend status from a reading and
// returns the BudgetExceeded condition; ok is false when there is no
// reading (no budget, or no store to read).
func spendFields(sp *v1alpha1.SpendStatus, r spendstatus.Result, q spendstatus.Query, gen int64, now time.Time) (metav1.Condition, bool) {
	if !r.Tracked {
		return metav1.Condition{}, false
	}
	usd := microUSD(int64(r.Spend))
	state, c := v1alpha1.BudgetStateWithin, metav1.Condition{Type: v1alpha1.ConditionBudgetExceeded, Status: metav1.ConditionFalse, ObservedGeneration: gen}
	spent := float64(r.Spend) / 1e6
	switch {
	case q.MaxBudget > 0 && spent >= q.MaxBudget:
		state, c.Status = v1alpha1.BudgetStateExceeded, metav1.ConditionTrue
		c.Message = fmt.Sprintf("spent %s of %s USD this period; requests are refused until it resets", usd, strconv.FormatFloat(q.MaxBudget, 'f', -1, 64))
	case q.SoftBudget > 0 && spent >= q.SoftBudget:
		state = v1alpha1.BudgetStateSoftExceeded
		c.Message = fmt.Sprintf("spent %s USD, past the soft budget of %s; requests still pass", usd, strconv.FormatFloat(q.SoftBudget, 'f', -1, 64))
	default:
		c.Message = fmt.Sprintf("spent %s USD this period", usd)
	}
	c.Reason = string(state)
	if sp.Spend != usd || sp.BudgetState != state {
		// Only a change of spend is written: a reading every 30 s of
		// thousands of keys must not become as many API writes.
		at := metav1.NewTime(now.UTC().Truncate(time.Second))
		sp.SpendUpdatedAt = &at
	}
	sp.Spend, sp.BudgetState = usd, state
	if r.ResetsAt.IsZero() {
		sp.PeriodResetsAt = nil
	} else if sp.PeriodResetsAt == nil || !sp.PeriodResetsAt.Time.Equal(r.ResetsAt) {
		at := metav1.NewTime(r.ResetsAt)
		sp.PeriodResetsAt = &at
	}
	return c, true
}

func (w *StatusWriter) write(ctx context.Context, snap *Snapshot) error {
	if snap.Version != "" && snap.PushErr == nil {
		if _, ok := w.seqOf[snap.Version]; !ok {
			w.seqOf[snap.Version] = snap.Seq
		}
	}
	var reps []Replica
	if w.Replicas != nil {
		reps = w.Replicas.Replicas()
	}
	if snap.PushErr == nil {
		w.Gateway.Metrics.clients(reps, snap.Version)
	}
	objs := make([]translate.Object, 0, len(snap.Output.Status))
	for o := range snap.Output.Status {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b translate.Object) int {
		return strings.Compare(a.Kind+"/"+a.Namespace+"/"+a.Name, b.Kind+"/"+b.Namespace+"/"+b.Name)
	})
	// Statuses are independent objects; a few writers in parallel keep a
	// burst of new keys from queueing behind each other's round trips.
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	// Forget deleted objects, so a long-lived controller with churning
	// keys does not keep them.
	oldest := snap.Seq
	for o, s := range w.since {
		if _, ok := snap.Output.Status[o]; !ok {
			delete(w.since, o)
		} else if s.seq < oldest {
			oldest = s.seq
		}
	}
	// A version older than every object's first push decides nothing (an
	// ACK or NACK of it is "not yet" either way), so it is forgotten too.
	for v, seq := range w.seqOf {
		if seq < oldest {
			delete(w.seqOf, v)
		}
	}
	for _, o := range objs {
		st := snap.Output.Status[o]
		s, ok := w.since[o]
		if !ok || s.gen != st.ObservedGeneration {
			s = since{gen: st.ObservedGeneration, seq: snap.Seq}
			w.since[o] = s
		}
		prog := w.programmed(st, s.seq, snap, reps)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := w.apply(ctx, o, st, prog, snap); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d statuses not written, first: %w", len(errs), errs[0])
	}
	return nil
}

// programmed decides the Programmed condition of an object first carried
// by push number first.
func (w *StatusWriter) programmed(st translate.Status, first uint64, snap *Snapshot, reps []Replica) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse, ObservedGeneration: st.ObservedGeneration}
	if a := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted); a != nil && a.Status != metav1.ConditionTrue {
		c.Reason, c.Message = v1alpha1.ReasonInvalid, "not programmed: the object is not accepted"
		return c
	}
	if snap.PushErr != nil && snap.Seq == first {
		c.Reason, c.Message = v1alpha1.ReasonRejected, "the controller's xDS server refused the config: "+snap.PushErr.Error()
		return c
	}
	if len(reps) == 0 {
		c.Reason, c.Message = v1alpha1.ReasonPending, "no Envoy or extproc replica is connected to the controller"
		return c
	}
	var done int
	for _, r := range reps {
		if seq, ok := w.seqOf[r.Acked]; ok && seq >= first {
			done++
			continue
		}
		if seq, ok := w.seqOf[r.Nacked]; ok && seq >= first {
			c.Reason, c.Message = v1alpha1.ReasonRejected, fmt.Sprintf("%s %s rejected version %s: %s", r.Kind, r.Node, r.Nacked, r.NackMessage)
			return c
		}
	}
	if done < len(reps) {
		c.Reason, c.Message = v1alpha1.ReasonPending, fmt.Sprintf("%d of %d replicas have the config", done, len(reps))
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1alpha1.ReasonProgrammed, fmt.Sprintf("all %d replicas have the config", len(reps))
	return c
}

// conditionsHolder is the part of each Weir kind the writer sets.
type conditionsHolder struct {
	obj        client.Object
	conditions *[]metav1.Condition
	observed   *int64
	spend      *v1alpha1.SpendStatus // nil for an AIRoute
}

func holder(o translate.Object) (conditionsHolder, bool) {
	switch o.Kind {
	case "AIRoute":
		r := &v1alpha1.AIRoute{}
		return conditionsHolder{r, &r.Status.Conditions, &r.Status.ObservedGeneration, nil}, true
	case "VirtualKey":
		k := &v1alpha1.VirtualKey{}
		return conditionsHolder{k, &k.Status.Conditions, &k.Status.ObservedGeneration, &k.Status.SpendStatus}, true
	case "Budget":
		b := &v1alpha1.Budget{}
		return conditionsHolder{b, &b.Status.Conditions, &b.Status.ObservedGeneration, &b.Status.SpendStatus}, true
	}
	return conditionsHolder{}, false
}

func (w *StatusWriter) apply(ctx context.Context, o translate.Object, st translate.Status, prog metav1.Condition, snap *Snapshot) error {
	h, ok := holder(o)
	if !ok {
		return nil
	}
	if err := w.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, h.obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if h.obj.GetGeneration() != st.ObservedGeneration {
		// The object changed since the translation; the next pass has it.
		return nil
	}
	before := h.obj.DeepCopyObject().(client.Object)
	conds := slices.Clone(*h.conditions)
	for _, c := range st.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			continue
		}
		c.ObservedGeneration = st.ObservedGeneration
		meta.SetStatusCondition(&conds, c)
	}
	meta.SetStatusCondition(&conds, prog)
	spendBefore := v1alpha1.SpendStatus{}
	if h.spend != nil {
		spendBefore = *h.spend.DeepCopy()
		if r, ok := w.spend[o]; ok {
			q, _ := spendQuery(h.obj)
			now := time.Now
			if w.Clock != nil {
				now = w.Clock
			}
			if c, ok := spendFields(h.spend, r, q, st.ObservedGeneration, now()); ok {
				meta.SetStatusCondition(&conds, c)
			}
		}
	}
	meta.SetStatusCondition(&conds, ready(st, conds))
	issuedChanged := false
	if vk, ok := h.obj.(*v1alpha1.VirtualKey); ok {
		if is, ok := snap.Issued[client.ObjectKeyFromObject(vk)]; ok {
			issuedChanged = issuance(&vk.Status, vk.Name, is)
		}
	}
	if equalConditions(conds, *h.conditions) && *h.observed == st.ObservedGeneration && !issuedChanged &&
		(h.spend == nil || equality.Semantic.DeepEqual(spendBefore, *h.spend)) {
		return nil
	}
	*h.conditions = conds
	*h.observed = st.ObservedGeneration
	if err := w.Client.Status().Patch(ctx, h.obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.Kind, o.Namespace, o.Name, client.IgnoreNotFound(err))
	}
	return nil
}

// ready summarises: the translation's own Ready verdict (Expired,
// Blocked) first, then the first of Accepted, ResolvedRefs and
// Programmed that is not True, then an exceeded budget.
func ready(st translate.Status, conds []metav1.Condition) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: st.ObservedGeneration}
	if r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); r != nil && r.Status != metav1.ConditionTrue {
		c.Reason, c.Message = r.Reason, r.Message
		return c
	}
	for _, t := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs, v1alpha1.ConditionProgrammed} {
		x := meta.FindStatusCondition(conds, t)
		if x == nil {
			continue
		}
		if x.Status != metav1.ConditionTrue {
			c.Reason, c.Message = x.Reason, x.Message
			return c
		}
	}
	if b := meta.FindStatusCondition(conds, v1alpha1.ConditionBudgetExceeded); b != nil && b.Status == metav1.ConditionTrue {
		c.Reason, c.Message = b.Reason, b.Message
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1alpha1.ReasonReady, "serving"
	return c
}

func equalConditions(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message &&
			x.ObservedGeneration == y.ObservedGeneration && x.LastTransitionTime.Equal(&y.LastTransitionTime)
	})
}

// issuance sets a key's status fields that describe its Secret and
// reports whether they changed.
func issuance(st *v1alpha1.VirtualKeyStatus, name string, is keys.Issued) bool {
	was := st.DeepCopy()
	st.SecretName = keys.SecretName(name)
	st.LastRotatedAt = nil
	if !is.IssuedAt.IsZero() {
		at := metav1.NewTime(is.IssuedAt.UTC().Truncate(time.Second))
		st.LastRotatedAt = &at
	}
	st.PreviousKeyExpiresAt = nil
	for _, p := range is.Previous {
		if st.PreviousKeyExpiresAt == nil || p.ExpiresAt.After(st.PreviousKeyExpiresAt.Time) {
			at := metav1.NewTime(p.ExpiresAt)
			st.PreviousKeyExpiresAt = &at
		}
	}
	return was.SecretName != st.SecretName || !timeEq(was.LastRotatedAt, st.LastRotatedAt) ||
		!timeEq(was.PreviousKeyExpiresAt, st.PreviousKeyExpiresAt)
}

// microUSD writes micro-dollars as the CRD's decimal USD string, exactly
// (no float): "12.34", "30.000001", "0". A negative count (a settle that
// refunded more than was reserved, transiently) shows as 0.
func microUSD(m int64) v1alpha1.USD {
	if m <= 0 {
		return "0"
	}
	s := strconv.FormatInt(m/1e6, 10)
	if frac := m % 1e6; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	return v1alpha1.USD(s)
}
