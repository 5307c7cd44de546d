package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// fakeProber fails the units it is told to, in-process: for the checker's
// own logic. The real path is covered by TestRPCProber and the e2e tests.
type fakeProber struct {
	mu      sync.Mutex
	fail    map[tradeunit.UnitID]bool
	latency map[tradeunit.UnitID]time.Duration
}

func (f *fakeProber) set(u tradeunit.UnitID, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[u] = fail
}

func (f *fakeProber) Probe(ctx context.Context, t Target) []ReplicaResult {
	f.mu.Lock()
	fail, lat := f.fail[t.Unit], f.latency[t.Unit]
	f.mu.Unlock()
	out := make([]ReplicaResult, len(t.Addrs))
	for i, a := range t.Addrs {
		out[i] = ReplicaResult{Addr: a, Latency: lat}
		if fail {
			out[i].Err = errors.New("injected failure")
		}
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// routesFile writes a table of n normal units and opens it.
func routesFile(t *testing.T, n int, edit func(*routing.Table)) (string, *routing.TableFile) {
	t.Helper()
	tbl := &routing.Table{Revision: 1}
	for i := 1; i <= n; i++ {
		tbl.Units = append(tbl.Units, routing.Unit{ID: tradeunit.UnitID(i), LogicAddrs: []string{"127.0.0.1:1"},
			Available: true, AcceptNew: true})
	}
	if edit != nil {
		edit(tbl)
	}
	path := filepath.Join(t.TempDir(), "routes.json")
	if err := routing.WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	src, err := routing.OpenFile(path, fastRoutes())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return path, src
}

// configEvery returns the default settings scaled to a probe interval.
func configEvery(interval time.Duration) Config {
	cfg := DefaultConfig()
	cfg.Interval, cfg.ProbeTimeout = interval, interval/2
	cfg.Policy.BaseEjection, cfg.Policy.MaxEjection = 5*interval, 60*interval
	return cfg
}

func startChecker(t *testing.T, cfg Config, deps Deps) (*Checker, *httptest.Server) {
	t.Helper()
	deps.Logger = quiet()
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	srv := httptest.NewServer(c.Handler(nil))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return c, srv
}

func waitReport(t *testing.T, c *Checker, what string, cond func(*Report) bool) *Report {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var version uint64
	for time.Now().Before(deadline) {
		r := c.Wait(context.Background(), version, time.Second)
		if cond(r) {
			return r
		}
		version = r.Version
	}
	t.Fatalf("%s: not within 5s; last report %+v", what, c.Report())
	return nil
}

// everyUnit holds when the report has n units, all with the verdict.
func everyUnit(n int, verdict string) func(*Report) bool {
	return func(r *Report) bool {
		if len(r.Units) != n {
			return false
		}
		for _, u := range r.Units {
			if u.Verdict != verdict {
				return false
			}
		}
		return true
	}
}

func unitOf(r *Report, id tradeunit.UnitID) UnitReport {
	for _, u := range r.Units {
		if u.Unit == id {
			return u
		}
	}
	return UnitReport{}
}

func TestCheckerEjectsAndReturns(t *testing.T) {
	path, src := routesFile(t, 4, nil)
	prober := &fakeProber{fail: map[tradeunit.UnitID]bool{}, latency: map[tradeunit.UnitID]time.Duration{3: 40 * time.Millisecond}}
	cfg := configEvery(50 * time.Millisecond)
	cfg.Policy.BaseEjection = 200 * time.Millisecond
	c, _ := startChecker(t, cfg, Deps{Routes: src, Prober: prober})
	// The EWMA starts at the second passing probe (the first paid for the
	// connection).
	r := waitReport(t, c, "all healthy, unit 3 probed twice", func(r *Report) bool {
		return everyUnit(4, Healthy)(r) && unitOf(r, 3).Samples >= 2
	})
	if u := unitOf(r, 3); u.LatencyEWMAMS != 40 || u.Probe != "order" || len(u.Replicas) != 1 {
		t.Fatalf("unit 3: %+v, want latency 40ms of an order probe", u)
	}

	prober.set(2, true)
	failedAt := time.Now()
	r = waitReport(t, c, "unit 2 ejected", func(r *Report) bool { return unitOf(r, 2).Verdict == Ejected })
	// Interval + 3 immediate re-probes; the fake fails at once.
	if took := time.Since(failedAt); took > 3*50*time.Millisecond {
		t.Errorf("ejected after %v, want within 3 intervals (150ms)", took)
	}
	if u := unitOf(r, 2); u.ConsecutiveFailures < 3 || !u.Failing || u.LastError == "" || u.EjectedUntil.IsZero() {
		t.Errorf("ejected unit: %+v", u)
	}
	if p := r.Partitions[0]; p.Ejected != 1 || p.Panic || p.MaxEjected != 2 {
		t.Errorf("partition: %+v, want 1 ejected of at most 2, no panic", p)
	}

	prober.set(2, false)
	r = waitReport(t, c, "unit 2 back", func(r *Report) bool { return unitOf(r, 2).Verdict == Healthy })
	if u := unitOf(r, 2); u.Ejections != 1 {
		t.Errorf("returned unit: %d ejections recorded, want 1", u.Ejections)
	}

	// The routing table's blacklist shows in the report.
	if _, err := routing.UpdateFile(path, func(tbl *routing.Table) error {
		tbl.SetBlacklist(routing.BlacklistEntry{Unit: 4, Reason: "disk swap", By: "test"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r = waitReport(t, c, "blacklist shown", func(r *Report) bool { return unitOf(r, 4).Blacklist != nil })
	if b := unitOf(r, 4).Blacklist; b.Reason != "disk swap" || !b.Active || b.By != "test" {
		t.Errorf("blacklist entry: %+v", b)
	}
}

// TestCheckerPanics: when every unit fails at once the checker ejects at most
// MaxEjectShare of them and reports the panic.
func TestCheckerPanics(t *testing.T) {
	_, src := routesFile(t, 5, func(tbl *routing.Table) { tbl.Units[4].Partition = "key" })
	prober := &fakeProber{fail: map[tradeunit.UnitID]bool{}}
	reg := prometheus.NewRegistry()
	c, srv := startChecker(t, configEvery(50*time.Millisecond), Deps{Routes: src, Prober: prober, Registry: reg})
	waitReport(t, c, "probed", everyUnit(5, Healthy))
	for u := tradeunit.UnitID(1); u <= 5; u++ {
		prober.set(u, true)
	}
	r := waitReport(t, c, "panic", func(r *Report) bool {
		return len(r.Partitions) == 2 && r.Partitions[0].Panic && r.Partitions[1].Panic &&
			r.Partitions[1].Bad == 4 && r.Partitions[1].Ejected == 2
	})
	ejected := 0
	for _, u := range r.Units {
		if u.Verdict == Ejected {
			ejected++
		}
		if !u.Failing {
			t.Errorf("unit %d not failing: %+v", u.Unit, u)
		}
	}
	if ejected != 2 {
		t.Fatalf("%d units ejected, want 2 (half of normal's 4, none of key's 1)", ejected)
	}
	body := get(t, srv.URL+"/metrics")
	for _, want := range []string{`tradeunit_health_partition_panic{partition="normal"} 1`,
		`tradeunit_health_partition_panic{partition="key"} 1`, `tradeunit_health_probes_total{result="fail",unit="5"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for u := tradeunit.UnitID(1); u <= 5; u++ {
		prober.set(u, false)
	}
	waitReport(t, c, "panic over", func(r *Report) bool { return !r.Partitions[0].Panic && !r.Partitions[1].Panic })
}

// TestLongPoll: a poll returns as soon as the version changes, and after its
// timeout otherwise; Follow delivers changes and reports a lost checker.
func TestLongPoll(t *testing.T) {
	_, src := routesFile(t, 2, nil)
	prober := &fakeProber{fail: map[tradeunit.UnitID]bool{}}
	c, srv := startChecker(t, configEvery(200*time.Millisecond), Deps{Routes: src, Prober: prober})
	r := waitReport(t, c, "probed", everyUnit(2, Healthy))

	start := time.Now()
	if got := c.Wait(context.Background(), 0, 2*time.Second); got.Version < r.Version || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("poll with an old version: got version %d after %v, want the current one at once", got.Version, time.Since(start))
	}
	// Statistics change with every probe and are published once per interval.
	start = time.Now()
	if got := c.Wait(context.Background(), r.Version, 5*time.Second); got.Version <= r.Version || time.Since(start) > 600*time.Millisecond {
		t.Fatalf("poll with the current version: got version %d after %v, want a newer one within an interval or two",
			got.Version, time.Since(start))
	}
	if body := get(t, srv.URL+"/v1/units?wait=x"); !strings.Contains(body, "wait must be") {
		t.Fatalf("bad wait: %q", body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		got     []*Report
		lostErr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, srv.URL, func(r *Report) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}, func(err error) {
			mu.Lock()
			lostErr = err
			mu.Unlock()
		})
	}()
	prober.set(1, true)
	waitFor(t, "follower sees the ejection", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && unitOf(got[len(got)-1], 1).Verdict == Ejected
	})
	srv.CloseClientConnections()
	srv.Close()
	waitFor(t, "follower reports the lost checker", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return lostErr != nil
	})
	cancel()
	<-done
}

// TestRPCProber probes a real logic service over gRPC: a passing probe
// leaves a closed order of the probe merchant; a stopped service fails.
func TestRPCProber(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := unit.New(unit.DefaultConfig(7), store)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, _ := rpc.NewServer(svc, quiet())
	go server.Serve(ln)
	defer server.Stop()
	pool := rpc.NewPool()
	defer pool.Close()
	p := &RPCProber{Dialer: pool}
	target := Target{Unit: 7, Addrs: []string{ln.Addr().String()}, Order: true, Timeout: time.Second}

	res := p.Probe(ctx, target)
	if len(res) != 1 || res[0].Err != nil || res[0].Latency <= 0 {
		t.Fatalf("probe: %+v", res)
	}
	events, err := store.Events(ctx, 0, 10)
	if err != nil || len(events) != 2 || events[0].Type != tradeunit.EventOrderCreated || events[1].Type != tradeunit.EventOrderClosed {
		t.Fatalf("events after a probe: %+v, %v; want the probe order created and closed", events, err)
	}
	o, err := store.Order(ctx, events[0].OrderNo)
	if err != nil || o.Mchid != tradeunit.ProbeMchid || o.State != tradeunit.StateClosed {
		t.Fatalf("probe order: %+v, %v", o, err)
	}
	if res := p.Probe(ctx, Target{Unit: 7, Addrs: target.Addrs, Timeout: time.Second}); res[0].Err != nil {
		t.Fatalf("read probe: %v", res[0].Err)
	}

	server.Stop()
	res = p.Probe(ctx, target)
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "create") {
		t.Fatalf("probe of a stopped service: %+v, want a failed create", res)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// fastRoutes are the routing options of the tests: quiet, polling often.
func fastRoutes() routing.Options {
	o := routing.DefaultOptions()
	o.PollInterval, o.Logger = 20*time.Millisecond, quiet()
	return o
}

// timeoutProber records the timeout each unit's probe was given.
type timeoutProber struct {
	mu       sync.Mutex
	timeouts map[tradeunit.UnitID]time.Duration
	order    map[tradeunit.UnitID]bool
}

func (p *timeoutProber) Probe(ctx context.Context, t Target) []ReplicaResult {
	p.mu.Lock()
	p.timeouts[t.Unit], p.order[t.Unit] = t.Timeout, t.Order
	p.mu.Unlock()
	return []ReplicaResult{{Addr: t.Addrs[0], Latency: time.Millisecond}}
}

// TestColdUnitsProbedByReadsWithTheirOwnBudget: a hot unit gets an order
// probe within ProbeTimeout; warm and cold units a read, a cold one within
// ColdProbeTimeout; the report and the metrics name each unit's
// temperature.
func TestColdUnitsProbedByReadsWithTheirOwnBudget(t *testing.T) {
	_, src := routesFile(t, 3, func(tbl *routing.Table) {
		tbl.Units[1].Temperature, tbl.Units[1].AcceptNew = routing.Warm, false
		tbl.Units[2].Temperature, tbl.Units[2].AcceptNew = routing.Cold, false
	})
	cfg := configEvery(40 * time.Millisecond)
	cfg.ColdProbeTimeout = 3 * time.Second
	p := &timeoutProber{timeouts: map[tradeunit.UnitID]time.Duration{}, order: map[tradeunit.UnitID]bool{}}
	reg := prometheus.NewRegistry()
	c, srv := startChecker(t, cfg, Deps{Routes: src, Prober: p, Registry: reg})
	r := waitReport(t, c, "every unit probed", func(r *Report) bool { return len(r.Units) == 3 && r.Units[2].Samples > 0 })
	metrics := get(t, srv.URL+"/metrics")
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tt := range []struct {
		unit    tradeunit.UnitID
		order   bool
		timeout time.Duration
		temp    string
	}{{1, true, cfg.ProbeTimeout, "hot"}, {2, false, cfg.ProbeTimeout, "warm"}, {3, false, cfg.ColdProbeTimeout, "cold"}} {
		if p.order[tt.unit] != tt.order || p.timeouts[tt.unit] != tt.timeout {
			t.Errorf("unit %d probed with order=%v timeout=%v, want %v and %v", tt.unit, p.order[tt.unit], p.timeouts[tt.unit], tt.order, tt.timeout)
		}
		if got := r.Units[tt.unit-1].Temperature; got != tt.temp {
			t.Errorf("unit %d reported %q, want %q", tt.unit, got, tt.temp)
		}
		if want := fmt.Sprintf(`tradeunit_health_unit_temperature{temperature=%q,unit="%d"} 1`, tt.temp, tt.unit); !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestPartitionAvailability: with one of four units failing every probe,
// the report and the metrics give creates 1 (the others are tried) and one
// order's calls 0.75.
func TestPartitionAvailability(t *testing.T) {
	_, src := routesFile(t, 4, nil)
	prober := &fakeProber{fail: map[tradeunit.UnitID]bool{4: true}}
	c, srv := startChecker(t, configEvery(20*time.Millisecond), Deps{Routes: src, Prober: prober})
	r := waitReport(t, c, "unit 4 failing, the others probed", func(r *Report) bool {
		return len(r.Partitions) == 1 && r.Partitions[0].Availability.Order == 0.75
	})
	if a := r.Partitions[0].Availability; a.Create != 1 {
		t.Fatalf("availability %+v, want create 1", a)
	}
	body := get(t, srv.URL+"/metrics")
	for _, want := range []string{`tradeunit_health_partition_create_availability{partition="normal"} 1`,
		`tradeunit_health_partition_order_availability{partition="normal"} 0.75`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
