package metrics

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func value(t *testing.T, m *Metrics, name string, labels map[string]string) (float64, int) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	var series int
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		series = len(mf.GetMetric())
	next:
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			v = valueOf(s)
		}
	}
	return v, series
}

func valueOf(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.GetCounter().GetValue()
	case s.Gauge != nil:
		return s.GetGauge().GetValue()
	case s.Histogram != nil:
		return float64(s.GetHistogram().GetSampleCount())
	}
	return 0
}

// The cached children must feed the same series as WithLabelValues did,
// and create none that was not reported.
func TestCachedSeries(t *testing.T) {
	m := New()
	for range 3 {
		m.Request("gpt-4o-mini", "openai", "chat", 200, time.Millisecond)
		m.Tokens("gpt-4o-mini", "openai", 10, 5, 0, 0)
		m.Phase("router", "request_body", time.Microsecond)
		m.StreamOpened("router")
	}
	m.Request("gpt-4o-mini", "openai", "chat", 429, time.Millisecond)
	m.StreamClosed("router")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
		series int
	}{
		{"weir_requests_total", map[string]string{"status": "200", "model": "gpt-4o-mini", "backend": "openai", "endpoint": "chat"}, 3, 2},
		{"weir_requests_total", map[string]string{"status": "429"}, 1, 2},
		{"weir_request_duration_seconds", map[string]string{"model": "gpt-4o-mini", "backend": "openai"}, 4, 1},
		{"weir_tokens_total", map[string]string{"type": "prompt"}, 30, 2},
		{"weir_tokens_total", map[string]string{"type": "completion"}, 15, 2},
		{"weir_extproc_phase_duration_seconds", map[string]string{"filter": "router", "phase": "request_body"}, 3, 1},
		{"weir_extproc_active_streams", map[string]string{"filter": "router"}, 2, 1},
	} {
		got, n := value(t, m, c.name, c.labels)
		if got != c.want || n != c.series {
			t.Errorf("%s%v = %v in %d series, want %v in %d", c.name, c.labels, got, n, c.want, c.series)
		}
	}
}
