package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/selection"
)

// metrics are the proxy's Prometheus metrics, on its own registry.
type metrics struct {
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	unitRequests  *prometheus.CounterVec
	unitDuration  *prometheus.HistogramVec
	createRetries prometheus.Counter
	shardRequests *prometheus.CounterVec
	shardDuration *prometheus.HistogramVec
	conflicts     prometheus.Counter
	selected      *prometheus.CounterVec
	weight        *prometheus.GaugeVec
	suspect       *prometheus.GaugeVec
	standby       *prometheus.GaugeVec
	recent        *prometheus.GaugeVec
	checker       prometheus.Gauge
	planRevision  prometheus.Gauge
	planChecker   prometheus.Gauge

	mu      sync.Mutex                // serializes plan
	planned map[tradeunit.UnitID]bool // units with plan gauges
}

var latencyBuckets = []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_proxy_http_requests_total", Help: "API requests, by operation and HTTP status.",
		}, []string{"op", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradeunit_proxy_http_request_duration_seconds", Help: "API request latency, by operation.", Buckets: latencyBuckets,
		}, []string{"op"}),
		unitRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_proxy_unit_requests_total",
			Help: "Calls to units, by unit, operation and outcome: ok, answered (a business error such as ORDER_PAID), failed (the unit could not be reached or failed).",
		}, []string{"unit", "op", "outcome"}),
		unitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradeunit_proxy_unit_request_duration_seconds", Help: "Latency of calls to units, by unit and operation.", Buckets: latencyBuckets,
		}, []string{"unit", "op"}),
		shardRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_proxy_directory_requests_total",
			Help: "Calls to directory shards, by shard, operation (get, put) and outcome: ok, answered (not found, refused), failed (unreachable or failing).",
		}, []string{"shard", "op", "outcome"}),
		shardDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tradeunit_proxy_directory_request_duration_seconds", Help: "Latency of calls to directory shards, by shard and operation.", Buckets: latencyBuckets,
		}, []string{"shard", "op"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_proxy_directory_conflicts_total", Help: "Directory writes another writer beat (compare-and-swap lost): the proxy followed the winner.",
		}),
		createRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tradeunit_proxy_create_retries_total", Help: "Create attempts on a further unit after the previous unit failed (order retry).",
		}),
		selected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tradeunit_proxy_selected_total", Help: "Creates for which selection ranked the unit first.",
		}, []string{"unit"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_unit_weight", Help: "The unit's selection weight for new orders (0: takes none).",
		}, []string{"unit"}),
		suspect: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_unit_suspect", Help: "1 while the unit is tried only as a last resort (ejected by the checker, or failing this proxy's calls).",
		}, []string{"unit"}),
		standby: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_unit_standby_in_use",
			Help: "1 while the unit is a standby taking its partition's new orders (the partition has no healthy regular unit); 0 otherwise.",
		}, []string{"unit"}),
		recent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_unit_recent_requests", Help: "Requests to the unit through this proxy in the balancing window.",
		}, []string{"unit"}),
		checker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_health_checker_reachable", Help: "1 while the proxy follows the health checker; 0 while it relies on its own view.",
		}),
		planRevision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_plan_revision", Help: "Revision of the routing table the current selection plan was built from.",
		}),
		planChecker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tradeunit_proxy_checker_version",
			Help: "Version of the health checker's report the current selection plan was built from (0: built without one).",
		}),
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.unitRequests, m.unitDuration, m.createRetries, m.shardRequests, m.shardDuration, m.conflicts,
		m.selected, m.weight, m.suspect, m.standby, m.recent, m.checker, m.planRevision, m.planChecker)
	return m
}

// unitCall records one call to a unit.
func (m *metrics) unitCall(u tradeunit.UnitID, op, outcome string, d time.Duration) {
	id := u.String()
	m.unitRequests.WithLabelValues(id, op, outcome).Inc()
	m.unitDuration.WithLabelValues(id, op).Observe(d.Seconds())
}

// shardCall records one call to a directory shard.
func (m *metrics) shardCall(s routing.ShardID, op string, err error, d time.Duration) {
	id := strconv.FormatUint(uint64(s), 10)
	outcome := "ok"
	switch code := tradeunit.ErrorCode(err); {
	case err == nil:
	case code == tradeunit.CodeUnitUnavailable || code == tradeunit.CodeInternal:
		outcome = "failed"
	default:
		outcome = "answered"
	}
	m.shardRequests.WithLabelValues(id, op, outcome).Inc()
	m.shardDuration.WithLabelValues(id, op).Observe(d.Seconds())
}

// plan publishes how a new plan treats each unit and what it was built
// from (the routing table's revision, the checker report's version), and
// drops the series of units that left the routing table (not Reset: a scrape
// must never see the gauges half filled).
func (m *metrics) plan(units []selection.UnitPlan, recent map[tradeunit.UnitID]uint64, revision int64, checkerVersion uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[tradeunit.UnitID]bool, len(units))
	for _, up := range units {
		seen[up.Unit] = true
		id := up.Unit.String()
		w, s, sb := 0.0, 0.0, 0.0
		if up.Eligible {
			w = up.Weight
		}
		if up.Suspect {
			s = 1
		}
		if up.InUse {
			sb = 1
		}
		m.weight.WithLabelValues(id).Set(w)
		m.suspect.WithLabelValues(id).Set(s)
		m.standby.WithLabelValues(id).Set(sb)
		m.recent.WithLabelValues(id).Set(float64(recent[up.Unit]))
	}
	for u := range m.planned {
		if !seen[u] {
			for _, g := range []*prometheus.GaugeVec{m.weight, m.suspect, m.standby, m.recent} {
				g.DeleteLabelValues(u.String())
			}
		}
	}
	m.planned = seen
	// Last: a scrape that shows the revision shows the unit gauges of it.
	m.planRevision.Set(float64(revision))
	m.planChecker.Set(float64(checkerVersion))
}
