package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tradeunit"
	"tradeunit/routing"
)

// Report is the checker's view of every unit: the body of GET /v1/units.
// Version grows with every change: at once when a verdict, a panic state or
// the routing table changes, and at most once per interval for statistics.
type Report struct {
	Version       uint64            `json:"version"`
	Time          time.Time         `json:"time"`
	IntervalMS    int64             `json:"interval_ms"`
	MaxEjectShare float64           `json:"max_eject_share"`
	Revision      int64             `json:"routes_revision"` // of the routing table
	Partitions    []PartitionReport `json:"partitions"`
	Units         []UnitReport      `json:"units"`
}

// PartitionReport is one partition's state.
type PartitionReport struct {
	Name       string `json:"name"`
	Units      int    `json:"units"`       // probed units
	Bad        int    `json:"bad"`         // ejected, or failing their probes
	Ejected    int    `json:"ejected"`     // at most MaxEjected
	MaxEjected int    `json:"max_ejected"` // ⌊max_eject_share × units⌋
	// Panic is true when more units are bad than may be ejected: the
	// checker trusts none of its verdicts beyond the bound, and proxies
	// route to every unit of the partition.
	Panic bool `json:"panic"`
	// Availability is computed from the units' measured availability.
	Availability Availability `json:"availability"`
}

// The verdicts of a unit.
const (
	Healthy = "healthy"
	Ejected = "ejected"
	Unknown = "unknown" // not probed yet
)

// UnitReport is what the checker knows about one unit.
type UnitReport struct {
	Unit      tradeunit.UnitID `json:"unit"`
	Partition string           `json:"partition"`
	// Temperature is the unit's step in its lifecycle, as the routing
	// table says (a cold unit is probed by reads, with its own budget).
	Temperature string `json:"temperature"`
	Verdict     string `json:"verdict"` // Healthy, Ejected or Unknown
	// Failing is true when its probes say it should be out; a failing unit
	// that is not ejected was kept in by the partition's bound.
	Failing              bool      `json:"failing"`
	Probe                string    `json:"probe"` // "order" (create, query, close) or "read"
	SuccessRate          float64   `json:"success_rate"`
	Samples              int       `json:"samples"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	LatencyEWMAMS        float64   `json:"latency_ewma_ms"`
	LatencyP99MS         float64   `json:"latency_p99_ms"`
	LastProbe            time.Time `json:"last_probe,omitzero"`
	LastError            string    `json:"last_error,omitempty"`
	// Ejections counts recent ejections; the back-off doubles with each.
	Ejections    int              `json:"ejections"`
	EjectedSince time.Time        `json:"ejected_since,omitzero"`
	EjectedUntil time.Time        `json:"ejected_until,omitzero"` // end of its back-off
	Blacklist    *BlacklistReport `json:"blacklist,omitempty"`
	Replicas     []ReplicaReport  `json:"replicas"`
}

// Latency returns the latency EWMA.
func (u *UnitReport) Latency() time.Duration {
	return time.Duration(u.LatencyEWMAMS * float64(time.Millisecond))
}

// BlacklistReport is a unit's operator blacklist entry.
type BlacklistReport struct {
	routing.BlacklistEntry
	Active bool `json:"active"` // false once it expired
}

// ReplicaReport is the last probe of one logic-service replica.
type ReplicaReport struct {
	Addr      string  `json:"addr"`
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// cachedReport is the report of one version, built once.
type cachedReport struct {
	report *Report
	body   []byte
}

// Report returns the current report.
func (c *Checker) Report() *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cachedLocked().report
}

func (c *Checker) cachedLocked() *cachedReport {
	if c.cached != nil {
		return c.cached
	}
	now := c.now()
	r := &Report{Version: c.version, Time: now.UTC(), IntervalMS: c.cfg.Interval.Milliseconds(),
		MaxEjectShare: c.policy.MaxEjectShare, Partitions: []PartitionReport{}, Units: []UnitReport{}}
	if c.table != nil {
		r.Revision = c.table.Revision
	}
	byPart := c.partitionsLocked()
	for name, v := range c.parts {
		r.Partitions = append(r.Partitions, PartitionReport{Name: name, Units: v.units, Bad: v.bad,
			Ejected: v.ejected, MaxEjected: v.maxEjected, Panic: v.panic, Availability: c.availabilityLocked(byPart[name])})
	}
	sort.Slice(r.Partitions, func(i, j int) bool { return r.Partitions[i].Name < r.Partitions[j].Name })
	for id, e := range c.units {
		s := &e.stats
		rate, n := s.successRate()
		u := UnitReport{
			Unit: id, Partition: e.partition, Temperature: string(e.temperature), Verdict: Healthy, Failing: s.failing(&c.policy), Probe: "read",
			SuccessRate: rate, Samples: n, ConsecutiveFailures: s.consecutiveFailures,
			ConsecutiveSuccesses: s.consecutiveSuccesses, LatencyEWMAMS: ms(s.latency.Value()), LatencyP99MS: ms(s.p99()),
			LastProbe: s.lastProbe.UTC(), LastError: s.lastError, Ejections: s.ejections,
			Replicas: []ReplicaReport{},
		}
		if e.target.Order {
			u.Probe = "order"
		}
		switch {
		case s.ejected:
			u.Verdict, u.EjectedSince, u.EjectedUntil = Ejected, s.ejectedSince.UTC(), s.ejectedUntil.UTC()
		case s.lastProbe.IsZero():
			u.Verdict, u.LastProbe = Unknown, time.Time{}
		}
		for _, rr := range e.replicas {
			rep := ReplicaReport{Addr: rr.Addr, OK: rr.Err == nil, LatencyMS: ms(rr.Latency)}
			if rr.Err != nil {
				rep.Error = rr.Err.Error()
			}
			u.Replicas = append(u.Replicas, rep)
		}
		r.Units = append(r.Units, u)
	}
	// Units the checker does not probe (unavailable) are listed too, so that
	// every unit of the table shows with its blacklist entry.
	if c.table != nil {
		for i := range c.table.Units {
			tu := &c.table.Units[i]
			if _, probed := c.units[tu.ID]; !probed {
				r.Units = append(r.Units, UnitReport{Unit: tu.ID, Partition: tu.Partition, Verdict: Unknown,
					Probe: "none (unavailable)", SuccessRate: 0, Replicas: []ReplicaReport{}})
			}
		}
	}
	sort.Slice(r.Units, func(i, j int) bool { return r.Units[i].Unit < r.Units[j].Unit })
	if c.table != nil {
		for i := range r.Units {
			if e, ok := c.table.BlacklistEntryOf(r.Units[i].Unit); ok {
				r.Units[i].Blacklist = &BlacklistReport{BlacklistEntry: *e, Active: e.Active(now)}
			}
		}
	}
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		body = []byte(`{"error":"` + err.Error() + `"}`)
	}
	c.cached = &cachedReport{report: r, body: append(body, '\n')}
	return c.cached
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Long-poll bounds: GET /v1/units?wait=V waits defaultPollTimeout unless
// told otherwise, and at most MaxPollTimeout.
const (
	defaultPollTimeout = 30 * time.Second
	MaxPollTimeout     = 60 * time.Second
)

// Wait returns the report once its version differs from version, or when
// ctx ends or timeout passes (then the current one).
func (c *Checker) Wait(ctx context.Context, version uint64, timeout time.Duration) *Report {
	return c.wait(ctx, version, timeout).report
}

func (c *Checker) wait(ctx context.Context, version uint64, timeout time.Duration) *cachedReport {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if c.version != version {
			r := c.cachedLocked()
			c.mu.Unlock()
			return r
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return c.current()
		case <-timer.C:
			return c.current()
		}
	}
}

func (c *Checker) current() *cachedReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cachedLocked()
}

// Handler serves the checker's API:
//
//	GET /v1/units[?wait=VERSION[&timeout=30s]]  the Report; with wait, it
//	     answers once the version differs from VERSION, or after the timeout
//	     (default 30s, at most 60s) with the same version
//	GET /metrics                                Prometheus metrics
//
// gatherer serves /metrics; nil serves the Deps' Registry when it is a
// prometheus.Gatherer.
func (c *Checker) Handler(gatherer prometheus.Gatherer) http.Handler {
	if gatherer == nil {
		gatherer, _ = c.deps.Registry.(prometheus.Gatherer)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/units", c.handleUnits)
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

func (c *Checker) handleUnits(w http.ResponseWriter, r *http.Request) {
	var rep *cachedReport
	if s := r.URL.Query().Get("wait"); s != "" {
		version, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, "wait must be a report version (an unsigned integer)", http.StatusBadRequest)
			return
		}
		timeout := defaultPollTimeout
		if s := r.URL.Query().Get("timeout"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				http.Error(w, "timeout must be a positive duration such as 30s", http.StatusBadRequest)
				return
			}
			timeout = min(d, MaxPollTimeout)
		}
		rep = c.wait(r.Context(), version, timeout)
	} else {
		rep = c.current()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(rep.body)
}
