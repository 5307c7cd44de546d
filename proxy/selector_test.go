package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tradeunit"
	"tradeunit/health"
	"tradeunit/routing"
)

func TestCheckerView(t *testing.T) {
	r := &health.Report{
		Partitions: []health.PartitionReport{{Name: "normal"}, {Name: "key", Panic: true}},
		Units: []health.UnitReport{
			{Unit: 1, Partition: "normal", Verdict: health.Healthy, LatencyEWMAMS: 2.5},
			{Unit: 2, Partition: "normal", Verdict: health.Ejected},
			{Unit: 3, Partition: "key", Verdict: health.Unknown},
		},
	}
	v := checkerView(r)
	if v.Units[1].Ejected || v.Units[1].Latency.Microseconds() != 2500 || !v.Units[2].Ejected || v.Units[3].Ejected {
		t.Fatalf("units: %+v", v.Units)
	}
	if !v.Panic["key"] || v.Panic["normal"] {
		t.Fatalf("panic: %v", v.Panic)
	}
}

// fakeChecker serves GET /v1/units like the health checker: the current
// report at once, or, asked to wait on the current version, when the next
// one is set (or the poll's timeout passes).
type fakeChecker struct {
	mu      sync.Mutex
	report  health.Report
	changed chan struct{} // closed when report changes
}

func newFakeChecker(r health.Report) *fakeChecker {
	return &fakeChecker{report: r, changed: make(chan struct{})}
}

func (f *fakeChecker) set(r health.Report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.report = r
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	cur, changed := f.report, f.changed
	f.mu.Unlock()
	if wait, _ := strconv.ParseUint(r.FormValue("wait"), 10, 64); wait != 0 && wait == cur.Version {
		timeout, _ := time.ParseDuration(r.FormValue("timeout"))
		select {
		case <-changed:
		case <-time.After(timeout):
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
		cur = f.report
		f.mu.Unlock()
	}
	json.NewEncoder(w).Encode(cur)
}

// gauge reads a gauge's value.
func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// TestPlanGaugesSayWhatThePlanWasBuiltFrom: the plan's gauges give the
// revision of the routing table and the version of the checker's report
// the current plan was built from (0 when it follows no report), and when
// they show a version, the plan in force has it.
func TestPlanGaugesSayWhatThePlanWasBuiltFrom(t *testing.T) {
	table := &routing.Table{Revision: 1}
	for id := tradeunit.UnitID(1); id <= 3; id++ {
		table.Units = append(table.Units, routing.Unit{ID: id, LogicAddrs: []string{addrOf(id)}, Available: true, AcceptNew: true})
	}
	routes, err := routing.NewMemoryTable(table)
	if err != nil {
		t.Fatal(err)
	}
	report := func(version uint64, ejected tradeunit.UnitID) health.Report {
		r := health.Report{Version: version, IntervalMS: 100, Partitions: []health.PartitionReport{{Name: routing.DefaultPartition}}}
		for _, u := range table.Units {
			verdict := health.Healthy
			if u.ID == ejected {
				verdict = health.Ejected
			}
			r.Units = append(r.Units, health.UnitReport{Unit: u.ID, Partition: routing.DefaultPartition, Verdict: verdict})
		}
		return r
	}
	checker := newFakeChecker(report(1, 0))
	srv := httptest.NewServer(checker)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Health = srv.URL
	p, err := New(cfg, Deps{Routes: routes, Dialer: &fakeDialer{units: map[string]*fakeUnit{}}, Registry: prometheus.NewRegistry(),
		Logger: discardLogger(), Credentials: &Credentials{Merchants: []Merchant{{Mchid: "1900000001", APIKey: "0123456789abcdef"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m := p.metrics
	if got, want := gauge(t, m.planRevision), 1.0; got != want {
		t.Errorf("plan revision of the first plan: got %v, want %v", got, want)
	}

	waitFor(t, "a plan built from the checker's report 1", func() bool { return gauge(t, m.planChecker) == 1 })
	if _, err := routes.Update(context.Background(), routing.Change{Who: "test"}, func(t *routing.Table) error {
		u, _ := t.Unit(3)
		u.Weight = 2
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a plan built from revision 2", func() bool { return gauge(t, m.planRevision) == 2 })

	checker.set(report(2, 2))
	waitFor(t, "a plan built from the checker's report 2", func() bool { return gauge(t, m.planChecker) == 2 })
	if got, want := gauge(t, m.suspect.WithLabelValues("2")), 1.0; got != want {
		t.Errorf("unit 2 suspect in the plan built from the report that ejects it: got %v, want %v", got, want)
	}

	srv.CloseClientConnections()
	srv.Close()
	waitFor(t, "a plan built without a report once the checker is gone", func() bool { return gauge(t, m.planChecker) == 0 })
	if got, want := gauge(t, m.planRevision), 2.0; got != want {
		t.Errorf("plan revision without the checker: got %v, want %v", got, want)
	}
}
