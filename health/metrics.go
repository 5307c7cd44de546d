package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
)

// metrics are the checker's Prometheus metrics.
type metrics struct {
	probes      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	ejected     *prometheus.GaugeVec
	ejections   *prometheus.CounterVec
	successRate *prometheus.GaugeVec
	ewma        *prometheus.GaugeVec
	failures    *prometheus.GaugeVec
	panic       *prometheus.GaugeVec
	bad         *prometheus.GaugeVec
	// temperatures is the one series of each unit's temperature.
	temperatures *prometheus.GaugeVec
	createAvail  *prometheus.GaugeVec
	orderAvail   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_health_probes_total", Help: "Probes of a unit, by result (ok or fail).",
		}, []string{"unit", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradeunit_health_probe_latency_seconds", Help: "Mean call latency of a unit's passing probes.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"unit"}),
		temperatures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_unit_temperature",
			Help: "1 for the unit's step in its lifecycle (hot, warm, copying, freezing, verifying, cold, retired), as the routing table says.",
		}, []string{"unit", "temperature"}),
		createAvail: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_partition_create_availability",
			Help: "Computed chance that a create of the partition succeeds: at least one of the units it tries is up (a lower bound).",
		}, []string{"partition"}),
		orderAvail: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_partition_order_availability",
			Help: "Computed chance that a call on one of the partition's orders succeeds: its units' mean measured availability.",
		}, []string{"partition"}),
		ejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_unit_ejected", Help: "1 while the checker ejects the unit.",
		}, []string{"unit"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_health_ejections_total", Help: "Ejections of a unit.",
		}, []string{"unit", "partition"}),
		successRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_unit_success_rate", Help: "Share of passing probes over the window.",
		}, []string{"unit"}),
		ewma: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_unit_latency_ewma_seconds", Help: "EWMA of a unit's probe call latency.",
		}, []string{"unit"}),
		failures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_unit_consecutive_failures", Help: "Consecutive failed probes of a unit.",
		}, []string{"unit"}),
		panic: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_partition_panic",
			Help: "1 while more of the partition's units look bad than may be ejected: verdicts beyond the bound are not trusted.",
		}, []string{"partition"}),
		bad: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_health_partition_bad_units", Help: "Units of the partition that are ejected or failing.",
		}, []string{"partition"}),
	}
	reg.MustRegister(m.probes, m.latency, m.ejected, m.ejections, m.successRate, m.ewma, m.failures, m.panic, m.bad, m.temperatures, m.createAvail, m.orderAvail)
	return m
}

func (m *metrics) probe(id tradeunit.UnitID, ok bool, latency time.Duration) {
	if ok {
		m.probes.WithLabelValues(id.String(), "ok").Inc()
		m.latency.WithLabelValues(id.String()).Observe(latency.Seconds())
		return
	}
	m.probes.WithLabelValues(id.String(), "fail").Inc()
}

func (m *metrics) unit(id tradeunit.UnitID, s *unitStats) {
	u := id.String()
	rate, _ := s.successRate()
	m.successRate.WithLabelValues(u).Set(rate)
	m.ewma.WithLabelValues(u).Set(s.latency.Value().Seconds())
	m.failures.WithLabelValues(u).Set(float64(s.consecutiveFailures))
	ejected := 0.0
	if s.ejected {
		ejected = 1
	}
	m.ejected.WithLabelValues(u).Set(ejected)
}

func (m *metrics) partition(name string, v partitionVerdict) {
	p := 0.0
	if v.panic {
		p = 1
	}
	m.panic.WithLabelValues(name).Set(p)
	m.bad.WithLabelValues(name).Set(float64(v.bad))
}

// availability sets a partition's computed availability.
func (m *metrics) availability(partition string, a Availability) {
	m.createAvail.WithLabelValues(partition).Set(a.Create)
	m.orderAvail.WithLabelValues(partition).Set(a.Order)
}

// temperature sets unit id's temperature series (and only it) to 1.
func (m *metrics) temperature(id tradeunit.UnitID, t routing.Temperature) {
	u := id.String()
	m.temperatures.DeletePartialMatch(prometheus.Labels{"unit": u})
	m.temperatures.WithLabelValues(u, string(t)).Set(1)
}

// forget drops the series of a unit that left the routing table.
func (m *metrics) forget(id tradeunit.UnitID) {
	u := id.String()
	m.temperatures.DeletePartialMatch(prometheus.Labels{"unit": u})
	for _, g := range []*prometheus.GaugeVec{m.ejected, m.successRate, m.ewma, m.failures} {
		g.DeleteLabelValues(u)
	}
}
