package relay

import "github.com/prometheus/client_golang/prometheus"

// Metrics are a relay's Prometheus metrics.
type Metrics struct {
	published prometheus.Counter
	failures  prometheus.Counter
	leader    prometheus.Gauge
	cursor    prometheus.Gauge
	backlog   prometheus.Gauge
	lag       prometheus.Gauge
	gaps      prometheus.Gauge
	oldestGap prometheus.Gauge
}

// NewMetrics registers a relay's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradeunit_relay_published_total",
			Help: "Order events published to the bus (a repeat after a crash or a lost lease counts again)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tradeunit_relay_failures_total",
			Help: "Relay steps that failed (storage, bus or lease) and were retried."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradeunit_relay_leader",
			Help: "1 while this relay holds its unit's lease and publishes."}),
		cursor: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradeunit_relay_cursor",
			Help: "The stored cursor: every event up to it was published."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradeunit_relay_backlog_events",
			Help: "Events written to the outbox after the newest one read."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradeunit_relay_lag_seconds",
			Help: "Age of the newest event published at the last step (0 when nothing waits)."}),
		gaps: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradeunit_relay_open_gap_ids",
			Help: "Event ids read past but not seen yet: transactions still to commit, or rolled back."}),
		oldestGap: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tradeunit_relay_oldest_gap_seconds",
			Help: "How long the oldest open gap has been waited on (it holds the cursor back)."}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.failures, m.leader, m.cursor, m.backlog, m.lag, m.gaps, m.oldestGap)
	}
	return m
}
