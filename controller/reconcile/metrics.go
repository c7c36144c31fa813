package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/controller/translate"
)

// Metrics are the controller's own series, beside controller-runtime's
// (reconcile counts and latencies, work queues, the API client).
type Metrics struct {
	passes    *prometheus.CounterVec
	translate prometheus.Histogram
	objects   *prometheus.GaugeVec
	replicas  *prometheus.GaugeVec
}

// NewMetrics registers the series with reg (the manager's
// metrics.Registry, served on its metrics address).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_controller_pushes_total",
			Help: "Gateway passes by outcome: pushed (a config reached the xDS server) or refused (the xDS server refused it; the previous version is still served).",
		}, []string{"result"}),
		translate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_controller_translate_seconds",
			Help:    "Time to list the cluster's objects and translate them into one config.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_controller_objects",
			Help: "Weir objects by kind and whether they are accepted (Accepted=True), after the last pass.",
		}, []string{"kind", "accepted"}),
		replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_controller_xds_clients",
			Help: "xDS clients connected to this replica by kind (envoy, extproc) and state: synced (ACKed the latest push), pending, rejected (NACKed it).",
		}, []string{"kind", "state"}),
	}
	reg.MustRegister(m.passes, m.translate, m.objects, m.replicas)
	return m
}

func (m *Metrics) pass(took time.Duration, out translate.Output, pushErr error) {
	if m == nil {
		return
	}
	m.translate.Observe(took.Seconds())
	if pushErr != nil {
		m.passes.WithLabelValues("refused").Inc()
	} else {
		m.passes.WithLabelValues("pushed").Inc()
	}
	m.objects.Reset()
	for o, st := range out.Status {
		acc := "false"
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted); c != nil && c.Status == metav1.ConditionTrue {
			acc = "true"
		}
		m.objects.WithLabelValues(o.Kind, acc).Inc()
	}
}

func (m *Metrics) clients(reps []Replica, latest string) {
	if m == nil {
		return
	}
	m.replicas.Reset()
	for _, r := range reps {
		state := "pending"
		switch {
		case r.Acked == latest:
			state = "synced"
		case r.Nacked == latest:
			state = "rejected"
		}
		m.replicas.WithLabelValues(r.Kind, state).Inc()
	}
}
