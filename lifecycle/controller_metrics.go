package lifecycle

import (
	"github.com/prometheus/client_golang/prometheus"

	"tradeunit/routing"
)

// metrics are the controller's Prometheus metrics.
type metrics struct {
	actions   *prometheus.CounterVec
	errors    *prometheus.CounterVec
	lastRound prometheus.Gauge
	units     *prometheus.GaugeVec
	active    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_lifecycle_actions_total",
			Help: "Automatic lifecycle actions, by kind: warm, add (a fresh unit), cool (a move started or resumed), cooled (a move finished).",
		}, []string{"action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_lifecycle_errors_total",
			Help: "Lifecycle steps that failed, by step: measure, warm, add, cool.",
		}, []string{"step"}),
		lastRound: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_lifecycle_last_round_timestamp_seconds", Help: "When the controller's last round ended (Unix time).",
		}),
		units: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_lifecycle_units", Help: "Units of the routing table, by temperature, at the last round.",
		}, []string{"temperature"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_lifecycle_active", Help: "1 while this controller is the active one, 0 on standby.",
		}),
	}
	for _, t := range routing.Lifecycle {
		m.units.WithLabelValues(string(t))
	}
	for _, a := range []string{"warm", "add", "cool", "cooled"} {
		m.actions.WithLabelValues(a)
	}
	if reg != nil {
		reg.MustRegister(m.actions, m.errors, m.lastRound, m.units, m.active)
	}
	return m
}

// countUnits sets the units per temperature from t.
func (m *metrics) countUnits(t *routing.Table) {
	n := map[routing.Temperature]int{}
	for _, u := range t.Units {
		temp := u.Temperature
		if temp == "" {
			temp = routing.Hot
		}
		n[temp]++
	}
	for _, temp := range routing.Lifecycle {
		m.units.WithLabelValues(string(temp)).Set(float64(n[temp]))
	}
}
