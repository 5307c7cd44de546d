package directory

import "github.com/prometheus/client_golang/prometheus"

// metrics are the reconciler's.
type metrics struct {
	backlog     prometheus.Gauge
	closed      prometheus.Counter
	paidOrphans prometheus.Counter
	unreachable prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_directory_abandoned_backlog",
			Help: "Entries of this shard still listing abandoned attempts after the last reconciler pass: orphans that may still exist.",
		}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_directory_orphans_closed_total", Help: "Orphan orders closed as SUPERSEDED by the reconciler.",
		}),
		paidOrphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_directory_paid_orphans_total", Help: "Orphan orders found paid: breaches of one order per out_trade_no (0 always).",
		}),
		unreachable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_directory_reconcile_unreachable_total", Help: "Calls of the reconciler to units that could not answer (retried next pass).",
		}),
	}
	reg.MustRegister(m.backlog, m.closed, m.paidOrphans, m.unreachable)
	return m
}
