// Package metrics holds Weir's Prometheus collectors. Labels are bounded:
// model is the configured model entry (a wildcard pattern, never a client's
// arbitrary string), backend is a configured backend name.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/weir-ai/weir/extproc/errs"
)

// Metrics is one registry of Weir's collectors. Tests build their own so
// they never share state.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	requestTime   *prometheus.HistogramVec
	phaseTime     *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	reloadSuccess prometheus.Gauge
	activeStreams *prometheus.GaugeVec
	spend         *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	softBudget    prometheus.Counter
	panics        *prometheus.CounterVec
	breakerState  *prometheus.GaugeVec
	breakerFlips  *prometheus.CounterVec
	incomplete    *prometheus.CounterVec

	// Labelled children by label tuple, so the request path does not
	// hash label values and take the vectors' locks on every call. Label
	// values are bounded (configured models and backends), so these only
	// grow to the config's size.
	phases   sync.Map // phaseKey -> prometheus.Observer
	finished sync.Map // requestKey -> *requestSeries
	streams  sync.Map // filter string -> prometheus.Gauge
	tokenc   sync.Map // tokenKey -> prometheus.Counter
}

type tokenKey struct {
	model, backend string
	typ            int
}

type phaseKey struct{ filter, phase string }

type requestKey struct {
	model, backend, endpoint string
	status                   int
}

// requestSeries are the series one finished request touches.
type requestSeries struct {
	requests prometheus.Counter
	time     prometheus.Observer
}

var tokenTypes = [4]string{"prompt", "completion", "cached", "cache_write"}

func (m *Metrics) series(model, backend, endpoint string, status int) *requestSeries {
	k := requestKey{model, backend, endpoint, status}
	if v, ok := m.finished.Load(k); ok {
		return v.(*requestSeries)
	}
	s := &requestSeries{
		requests: m.requests.WithLabelValues(model, backend, endpoint, strconv.Itoa(status)),
		time:     m.requestTime.WithLabelValues(model, backend),
	}
	v, _ := m.finished.LoadOrStore(k, s)
	return v.(*requestSeries)
}

// tokenSeries is a token counter, created on first use so that a type
// never reported has no series.
func (m *Metrics) tokenSeries(model, backend string, typ int) prometheus.Counter {
	k := tokenKey{model, backend, typ}
	c, ok := m.tokenc.Load(k)
	if !ok {
		c, _ = m.tokenc.LoadOrStore(k, m.tokens.WithLabelValues(model, backend, tokenTypes[typ]))
	}
	return c.(prometheus.Counter)
}

// New creates and registers the collectors.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_requests_total",
		Help: "Requests finished, by configured model, backend, endpoint and HTTP status.",
	}, []string{"model", "backend", "endpoint", "status"})
	m.requestTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "weir_request_duration_seconds",
		Help:    "Time from the router-level filter's first message to the end of the response.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
	}, []string{"model", "backend"})
	m.phaseTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "weir_extproc_phase_duration_seconds",
		Help: "Time the extproc spends handling one ext_proc message, by filter level and phase.",
		// From 2 µs: this is the gateway's own overhead, not upstream time.
		Buckets: prometheus.ExponentialBuckets(2e-6, 2.5, 12),
	}, []string{"filter", "phase"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_tokens_total",
		Help: "Tokens reported by providers, by type (prompt, completion, cached, cache_write).",
	}, []string{"model", "backend", "type"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_config_reloads_total",
		Help: "Config reload attempts by result (success, failure).",
	}, []string{"result"})
	m.reloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "weir_config_last_reload_successful",
		Help: "1 if the last config reload succeeded, 0 if the old config is still in use.",
	})
	m.activeStreams = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "weir_extproc_active_streams",
		Help: "Open ext_proc streams by filter level.",
	}, []string{"filter"})
	m.spend = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_spend_usd_total",
		Help: "Cost of finished requests at the pricing table's prices, by model and backend.",
	}, []string{"model", "backend"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_admission_refusals_total",
		Help: "Requests refused before going upstream, by HTTP status and the rule that refused them (x-weir-refusal-rule; \"other\" for a refusal that names none).",
	}, []string{"status", "rule"})
	m.softBudget = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weir_soft_budget_alerts_total",
		Help: "Requests admitted past a soft budget (the response carries x-weir-soft-budget-exceeded).",
	})
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_extproc_panics_total",
		Help: "Panics recovered while processing a stream, by filter level; each ended one request with a 500.",
	}, []string{"filter"})
	m.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "weir_redis_breaker_state",
		Help: "State of the circuit breaker in front of a Redis store: 0 closed (calls go to Redis), 1 open (the fail mode answers without calling Redis), 2 half-open (one probe in flight).",
	}, []string{"store"})
	m.incomplete = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_streams_incomplete_total",
		Help: "Streamed responses that did not end cleanly, by model, backend and reason: no_final_event (the client never got the stream's last event: the upstream was cut or the client left) or no_usage (the provider reported no usage; billed from what was delivered).",
	}, []string{"model", "backend", "reason"})
	m.breakerFlips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_redis_breaker_transitions_total",
		Help: "Circuit breaker state changes, by store and the state entered (closed, open, half_open).",
	}, []string{"store", "to"})
	m.Registry.MustRegister(m.requests, m.requestTime, m.phaseTime, m.tokens, m.reloads, m.reloadSuccess, m.activeStreams,
		m.spend, m.refusals, m.softBudget, m.panics, m.breakerState, m.breakerFlips, m.incomplete,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Phase records one message's handling time.
func (m *Metrics) Phase(filter, phase string, d time.Duration) {
	k := phaseKey{filter, phase}
	o, ok := m.phases.Load(k)
	if !ok {
		o, _ = m.phases.LoadOrStore(k, m.phaseTime.WithLabelValues(filter, phase))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Request records a finished request.
func (m *Metrics) Request(model, backend, endpoint string, status int, d time.Duration) {
	s := m.series(model, backend, endpoint, status)
	s.requests.Inc()
	s.time.Observe(d.Seconds())
}

// Tokens records usage.
func (m *Metrics) Tokens(model, backend string, prompt, completion, cached, cacheWrite int64) {
	for i, n := range [4]int64{prompt, completion, cached, cacheWrite} {
		if n > 0 {
			m.tokenSeries(model, backend, i).Add(float64(n))
		}
	}
}

// IncompleteStream counts a stream that did not end cleanly; it is rare,
// so the series is looked up each time.
func (m *Metrics) IncompleteStream(model, backend, reason string) {
	m.incomplete.WithLabelValues(model, backend, reason).Inc()
}

// Reload records a config reload attempt.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadSuccess.Set(1)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.reloadSuccess.Set(0)
}

// StreamOpened and StreamClosed track open ext_proc streams.
func (m *Metrics) StreamOpened(filter string) { m.stream(filter).Inc() }
func (m *Metrics) StreamClosed(filter string) { m.stream(filter).Dec() }

func (m *Metrics) stream(filter string) prometheus.Gauge {
	g, ok := m.streams.Load(filter)
	if !ok {
		g, _ = m.streams.LoadOrStore(filter, m.activeStreams.WithLabelValues(filter))
	}
	return g.(prometheus.Gauge)
}

// Spend adds a finished request's cost.
func (m *Metrics) Spend(model, backend string, usd float64) {
	if usd > 0 {
		m.spend.WithLabelValues(model, backend).Add(usd)
	}
}

// Refused counts a request refused before going upstream (auth, access
// rules, limits, request checks). A rule outside [errs.Rules] counts as
// "other", so the label's cardinality is bounded by the fixed rule set.
func (m *Metrics) Refused(status int, rule errs.Rule) {
	m.refusals.WithLabelValues(strconv.Itoa(status), rule.Label()).Inc()
}

// RefusalsCounter is the refusal counter of one status and rule, for tests.
func (m *Metrics) RefusalsCounter(status int, rule errs.Rule) prometheus.Counter {
	return m.refusals.WithLabelValues(strconv.Itoa(status), rule.Label())
}

// Panic counts a recovered panic.
func (m *Metrics) Panic(filter string) { m.panics.WithLabelValues(filter).Inc() }

// PanicsCounter is the recovered-panic counter of one filter level.
func (m *Metrics) PanicsCounter(filter string) prometheus.Counter {
	return m.panics.WithLabelValues(filter)
}

// SoftBudget counts a soft-budget alert.
func (m *Metrics) SoftBudget() { m.softBudget.Inc() }

// BreakerStarted starts the breaker series of a Redis store ("limits") at
// closed, so a dashboard sees the store before its first failure.
func (m *Metrics) BreakerStarted(store string) { m.breakerState.WithLabelValues(store).Set(0) }

// BreakerChanged records that a store's breaker entered state (the gauge's
// value), named to.
func (m *Metrics) BreakerChanged(store string, state int, to string) {
	m.breakerState.WithLabelValues(store).Set(float64(state))
	m.breakerFlips.WithLabelValues(store, to).Inc()
}

// BreakerGauge and BreakerTransitions are the breaker's series, for tests.
func (m *Metrics) BreakerGauge(store string) prometheus.Gauge {
	return m.breakerState.WithLabelValues(store)
}

func (m *Metrics) BreakerTransitions(store, to string) prometheus.Counter {
	return m.breakerFlips.WithLabelValues(store, to)
}
