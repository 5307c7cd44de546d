package failover

import "github.com/prometheus/client_golang/prometheus"

// metrics are the controller's Prometheus metrics.
type metrics struct {
	decisions *prometheus.CounterVec
	failovers prometheus.Counter
	refused   prometheus.Counter
	errors    prometheus.Counter
	rejoins   *prometheus.CounterVec
	repoints  prometheus.Counter
	lastRTO   prometheus.Gauge
	active    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_failover_decisions_total",
			Help: "Decisions of the failover controller, one per unit per round, by outcome (healthy, suspect, replica-receives, checker-healthy, damped, failover, ...).",
		}, []string{"outcome"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_failover_failovers_total", Help: "Automatic failovers that gave a unit a new primary.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_failover_refused_total", Help: "Automatic failovers refused because no replica was safe to promote (retried next round).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_failover_errors_total", Help: "Automatic failovers that failed in a step (resumed next round).",
		}),
		rejoins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_failover_rejoins_total", Help: "Fenced old primaries the controller tried to rejoin as replicas, by result: done, errant (refused: rebuild it), error.",
		}, []string{"result"}),
		repoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_failover_repoints_total", Help: "Replicas re-pointed to their primary because a stopped failover left them on the old one.",
		}),
		lastRTO: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_failover_last_rto_seconds", Help: "The last automatic failover's time from the first failed check to the new primary in the storage topology.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_failover_active", Help: "1 while this controller is the active one, 0 on standby.",
		}),
	}
	for _, o := range outcomes {
		m.decisions.WithLabelValues(string(o))
	}
	for _, r := range []string{"done", "errant", "error"} {
		m.rejoins.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.failovers, m.refused, m.errors, m.rejoins, m.repoints, m.lastRTO, m.active)
	}
	return m
}
