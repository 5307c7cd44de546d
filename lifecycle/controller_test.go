package lifecycle_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/election"
	"tradeunit/lifecycle"
	"tradeunit/orderno"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// world is a routing table file and its storage topology in a temporary
// directory, each unit with a real SQLite storage, and a clock the test
// moves.
type world struct {
	t      *testing.T
	dir    string
	path   string
	routes *routing.TableFile
	top    *routing.TopologyFile
	cooler *fakeCooler

	mu  sync.Mutex
	now time.Time
	seq uint64
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// newWorld writes a table of units (each gets a storage in the topology).
func newWorld(t *testing.T, units ...routing.Unit) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), now: t0}
	w.path = filepath.Join(w.dir, "routes.json")
	table, top := &routing.Table{Revision: 1, Units: units}, &routing.Topology{Revision: 1}
	for _, u := range units {
		top.Set(u.ID, routing.Storage{Primary: w.storageDSN(u.ID)})
		s, err := sqlstore.Open(context.Background(), w.storageDSN(u.ID), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if err := routing.WriteFile(w.path, table); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(w.path), top); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.routes, err = routing.OpenFile(w.path, routing.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.routes.Close() })
	if w.top, err = routing.OpenTopologyFile(routing.TopologyPath(w.path), routing.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.top.Close() })
	w.cooler = &fakeCooler{routes: w.routes}
	return w
}

func (w *world) storageDSN(id tradeunit.UnitID) dsn.DSN {
	d, err := w.freshTemplate().DSN(id)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func (w *world) freshTemplate() lifecycle.Template {
	return lifecycle.Template("sqlite:" + filepath.Join(w.dir, "unit-{unit}.db"))
}

func (w *world) coldTemplate() lifecycle.Template {
	return lifecycle.Template("sqlite:" + filepath.Join(w.dir, "cold", "unit-{unit}.db"))
}

func (w *world) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

// config is a policy with every threshold off, on the world's storage and
// clock.
func (w *world) config() lifecycle.ControllerConfig {
	c := lifecycle.DefaultControllerConfig()
	c.MaxOrders, c.MaxBytes, c.MaxAge = 0, 0, 0
	c.FreshStorage, c.ColdStorage, c.Now = w.freshTemplate(), w.coldTemplate(), w.Now
	c.Every, c.LockRetry = 10*time.Millisecond, 5*time.Millisecond
	return c
}

func (w *world) controller(cfg lifecycle.ControllerConfig, log *slog.Logger) *lifecycle.Controller {
	w.t.Helper()
	return w.controllerWith(cfg, log, nil)
}

func (w *world) controllerWith(cfg lifecycle.ControllerConfig, log *slog.Logger, reg prometheus.Registerer) *lifecycle.Controller {
	w.t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := lifecycle.NewController(cfg, lifecycle.ControllerDeps{Routes: w.routes, Topology: w.top, Cooler: w.cooler,
		Election: election.NewFile(w.path+".lifecycle.lock", cfg.LockRetry), Logger: log, Registry: reg})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// createOrders creates n orders in unit id at time at, through its store.
func (w *world) createOrders(id tradeunit.UnitID, n int, at time.Time) []string {
	w.t.Helper()
	s, err := sqlstore.Open(context.Background(), w.storageDSN(id), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	defer s.Close()
	var orders []*tradeunit.Order
	for range n {
		w.seq++
		no, err := orderno.New(id, at, w.seq)
		if err != nil {
			w.t.Fatal(err)
		}
		orders = append(orders, &tradeunit.Order{OrderNo: no.String(), Mchid: "1900000001", OutTradeNo: fmt.Sprintf("o-%d", w.seq),
			Description: "d", Amount: tradeunit.Amount{Total: 100, Currency: tradeunit.DefaultCurrency}, CreateTime: at})
	}
	for _, r := range s.CreateOrders(context.Background(), orders) {
		if r.Err != nil {
			w.t.Fatal(r.Err)
		}
	}
	var nos []string
	for _, o := range orders {
		nos = append(nos, o.OrderNo)
	}
	return nos
}

// pay pays order no of unit id at time at: one more outbox event.
func (w *world) pay(id tradeunit.UnitID, no string, at time.Time) {
	w.t.Helper()
	s, err := sqlstore.Open(context.Background(), w.storageDSN(id), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PayOrder(context.Background(), "1900000001", no, "pay-"+no, at); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) unit(id tradeunit.UnitID) (routing.Unit, bool) {
	u, ok := w.routes.Current().Unit(id)
	if !ok {
		return routing.Unit{}, false
	}
	return *u, true
}

// round runs one round and checks the invariant: the partition has a unit
// that takes new orders.
func (w *world) round(c *lifecycle.Controller) {
	w.t.Helper()
	if err := c.Round(context.Background()); err != nil {
		w.t.Fatalf("round: %v", err)
	}
	w.checkTakesNew(routing.DefaultPartition)
}

func (w *world) checkTakesNew(partition string) {
	w.t.Helper()
	for _, u := range w.routes.Current().Units {
		if u.Partition == partition && u.TakesNewOrders() {
			return
		}
	}
	w.t.Fatalf("partition %s has no unit taking new orders: %+v", partition, w.routes.Current().Units)
}

// deploy does what the deployment does for a fresh unit: starts its logic
// services and makes it available.
func (w *world) deploy(id tradeunit.UnitID) {
	w.t.Helper()
	_, err := w.routes.Update(context.Background(), routing.Change{Who: "test", What: "deploy"}, func(t *routing.Table) error {
		u, _ := t.Unit(id)
		u.LogicAddrs, u.Available = []string{"127.0.0.1:9002"}, true
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

func hotUnit(id tradeunit.UnitID, labels map[string]string) routing.Unit {
	return routing.Unit{ID: id, Partition: routing.DefaultPartition, LogicAddrs: []string{"127.0.0.1:9001"},
		Available: true, AcceptNew: true, Temperature: routing.Hot, Labels: labels}
}

// fakeCooler records its calls and, as the mover does, leaves the unit
// retired.
type fakeCooler struct {
	routes routing.Editor
	mu     sync.Mutex
	calls  []string // "UNIT->DSN"
	done   int
}

func (f *fakeCooler) Cool(ctx context.Context, id tradeunit.UnitID, to dsn.DSN) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%d->%s", id, to))
	f.mu.Unlock()
	_, err := f.routes.Update(ctx, routing.Change{Who: "mover", What: "retired"}, func(t *routing.Table) error {
		u, _ := t.Unit(id)
		u.Temperature = routing.Retired
		return nil
	})
	f.mu.Lock()
	f.done++
	f.mu.Unlock()
	return err
}

func (f *fakeCooler) state() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), f.done
}

// waitFor polls cond until it holds, or fails the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // a poll interval, not a stand-in for the condition
	}
}

// change returns the newest change of the table that did what.
func (w *world) change(what string) routing.Change {
	w.t.Helper()
	h, err := w.routes.History(context.Background(), 100)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range h {
		if c.What == what {
			return c
		}
	}
	w.t.Fatalf("no change %q in the history %+v", what, h)
	return routing.Change{}
}

// TestWarmPolicy: each threshold warms a hot unit with its figure as the
// reason, once a fresh replacement takes new orders; below the
// thresholds, with lifecycle=off or with the controller off, nothing
// changes.
func TestWarmPolicy(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		config func(c *lifecycle.ControllerConfig)
		age    time.Duration // of the unit's orders
		want   string        // part of the warm change's reason; "" for none
	}{
		{"orders", nil, func(c *lifecycle.ControllerConfig) { c.MaxOrders = 3 }, 0, "3 orders, threshold 3"},
		{"size", nil, func(c *lifecycle.ControllerConfig) { c.MaxBytes = 1 }, 0, "bytes, threshold 1"},
		{"age", nil, func(c *lifecycle.ControllerConfig) { c.MaxAge = 30 * 24 * time.Hour }, 40 * 24 * time.Hour, "960h0m0s old, threshold 720h0m0s"},
		{"below", nil, func(c *lifecycle.ControllerConfig) {
			c.MaxOrders, c.MaxBytes, c.MaxAge = 4, 1<<40, 41*24*time.Hour
		}, 40 * 24 * time.Hour, ""},
		{"lifecycle=off", map[string]string{lifecycle.OffLabel: "off"}, func(c *lifecycle.ControllerConfig) { c.MaxOrders = 1 }, 0, ""},
		{"controller off", nil, func(c *lifecycle.ControllerConfig) { c.MaxOrders, c.Off = 1, true }, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, hotUnit(1, tc.labels))
			w.createOrders(1, 3, t0.Add(-tc.age))
			cfg := w.config()
			tc.config(&cfg)
			c := w.controller(cfg, nil)
			w.round(c)
			if tc.want == "" {
				w.round(c)
				if u, _ := w.unit(1); !u.TakesNewOrders() || len(w.routes.Current().Units) != 1 {
					t.Fatalf("units %+v, want unit 1 untouched and no unit added", w.routes.Current().Units)
				}
				return
			}
			fresh, ok := w.unit(2)
			if !ok {
				t.Fatalf("no fresh unit added: %+v", w.routes.Current().Units)
			}
			if u, _ := w.unit(1); !u.TakesNewOrders() {
				t.Fatalf("unit 1 = %+v warmed before its replacement takes new orders", u)
			}
			if fresh.Available || len(fresh.LogicAddrs) != 0 || fresh.Labels[lifecycle.ReplacesLabel] != "1" || !fresh.AcceptNew {
				t.Fatalf("fresh unit = %+v, want unavailable, no logic address, accepting new orders, replacing 1", fresh)
			}
			w.deploy(2)
			w.round(c)
			u, _ := w.unit(1)
			if u.Temperature != routing.Warm || u.AcceptNew {
				t.Fatalf("unit 1 = %+v, want warm and no new orders", u)
			}
			ch := w.change("unit warm 1")
			if ch.Who != lifecycle.Who || ch.What != "unit warm 1" || !strings.Contains(ch.Why, tc.want) {
				t.Fatalf("change %+v, want who lifecycle, what \"unit warm 1\", why with %q", ch, tc.want)
			}
		})
	}
}

// TestFreshUnitFirst: a partition's only hot unit is warmed only after a
// fresh unit, registered in the storage topology first and then in the
// table, takes new orders; no round leaves the partition without a unit
// that takes new orders.
func TestFreshUnitFirst(t *testing.T) {
	w := newWorld(t, hotUnit(1, nil))
	w.createOrders(1, 2, t0)
	cfg := w.config()
	cfg.MaxOrders = 2
	reg := prometheus.NewRegistry()
	c := w.controllerWith(cfg, nil, reg)

	// Every published table keeps a unit taking new orders.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bad []int64
	var watched sync.WaitGroup
	watched.Add(1)
	go func() {
		defer watched.Done()
		for tab := range w.routes.Watch(ctx) {
			if !slicesAny(tab.Units, func(u routing.Unit) bool { return u.TakesNewOrders() }) {
				bad = append(bad, tab.Revision)
			}
		}
	}()

	for range 3 { // the fresh unit is added once, however long its deployment takes
		w.round(c)
	}
	if n := len(w.routes.Current().Units); n != 2 {
		t.Fatalf("%d units after three rounds, want 2: %+v", n, w.routes.Current().Units)
	}
	st, ok := w.top.Current().Unit(2)
	if !ok || st.Primary != w.storageDSN(2) {
		t.Fatalf("fresh unit's storage = %+v, want %s", st, w.storageDSN(2))
	}
	storage, _ := w.top.History(context.Background(), 1)
	table, _ := w.routes.History(context.Background(), 1)
	if len(storage) == 0 || !strings.HasPrefix(storage[0].What, "unit add 2") || storage[0].Time.After(table[0].Time) {
		t.Fatalf("storage change %+v, table change %+v: want the storage registered first", storage, table)
	}
	w.deploy(2)
	w.round(c)
	if u, _ := w.unit(1); u.Temperature != routing.Warm {
		t.Fatalf("unit 1 = %+v, want warm once unit 2 takes new orders", u)
	}
	w.round(c) // unit 2 is the partition's hot unit now: nothing more to add
	if n := len(w.routes.Current().Units); n != 2 {
		t.Fatalf("%d units, want 2", n)
	}
	cancel()
	watched.Wait()
	if len(bad) > 0 {
		t.Fatalf("revisions %v left the partition without a unit taking new orders", bad)
	}
	for _, m := range []struct {
		name, labels string
		want         float64
	}{
		{"tradeunit_lifecycle_actions_total", `action="add"`, 1},
		{"tradeunit_lifecycle_actions_total", `action="warm"`, 1},
		{"tradeunit_lifecycle_units", `temperature="warm"`, 1},
		{"tradeunit_lifecycle_units", `temperature="hot"`, 1},
	} {
		if got := metricValue(t, reg, m.name, m.labels); got != m.want {
			t.Errorf("%s{%s} = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

// metricValue returns the value of the metric name whose labels print as
// labels (`k="v"`).
func metricValue(t *testing.T, reg *prometheus.Registry, name, labels string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if strings.Join(ls, ",") == labels {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, labels)
	return 0
}

func slicesAny[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

// TestMinHot: a partition below MinHot hot units gets fresh ones.
func TestMinHot(t *testing.T) {
	w := newWorld(t, hotUnit(1, nil))
	cfg := w.config()
	cfg.MinHot = 3
	c := w.controller(cfg, nil)
	w.round(c)
	w.round(c) // the fresh units count while their deployment is pending
	if n := len(w.routes.Current().Units); n != 3 {
		t.Fatalf("%d units, want 3: %+v", n, w.routes.Current().Units)
	}
}

// TestMaxUnits: at the cap no fresh unit is added, neither for MinHot nor
// to replace a full unit, which then stays hot.
func TestMaxUnits(t *testing.T) {
	w := newWorld(t, hotUnit(1, nil))
	w.createOrders(1, 2, t0)
	cfg := w.config()
	cfg.MinHot, cfg.MaxOrders, cfg.MaxUnits = 2, 2, 1
	c := w.controller(cfg, nil)
	w.round(c)
	w.round(c)
	if n := len(w.routes.Current().Units); n != 1 {
		t.Fatalf("%d units with max units 1, want 1: %+v", n, w.routes.Current().Units)
	}
	if u, _ := w.unit(1); u.Temperature != routing.Hot || !u.AcceptNew {
		t.Fatalf("unit 1 past its threshold at the cap: %+v, want it hot", u)
	}
}

// TestCool: a warm unit is moved to cold storage only after its change
// rate stayed below CoolBelow for CoolAfter, once, to the templated DSN.
func TestCool(t *testing.T) {
	warm := hotUnit(1, nil)
	warm.Temperature, warm.AcceptNew = routing.Warm, false
	w := newWorld(t, warm, hotUnit(2, nil))
	nos := w.createOrders(1, 3, t0.Add(-time.Minute))
	cfg := w.config()
	cfg.CoolBelow, cfg.CoolWindow, cfg.CoolAfter = 0.001, 10*time.Minute, time.Hour
	c := w.controller(cfg, nil)
	calls := func() int { n, _ := w.cooler.state(); return len(n) }

	steps := []struct {
		advance time.Duration
		pay     bool // an update of one of its orders, now
		cools   bool
	}{
		{0, false, false},                // busy: 3 events in the window
		{20 * time.Minute, false, false}, // quiet since now
		{30 * time.Minute, true, false},  // busy again: the quiet spell starts over
		{time.Hour, false, false},        // quiet since now
		{59 * time.Minute, false, false}, // not yet CoolAfter
		{2 * time.Minute, false, true},
		{time.Hour, false, false}, // retired: never again
	}
	for i, s := range steps {
		w.advance(s.advance)
		if s.pay {
			w.pay(1, nos[0], w.Now())
		}
		before := calls()
		w.round(c)
		if s.cools {
			waitFor(t, "the cooler's call", func() bool { _, done := w.cooler.state(); return done == 1 })
		}
		if got := calls() - before; got != map[bool]int{false: 0, true: 1}[s.cools] {
			t.Fatalf("step %d: %d Cool calls, want cooled=%v", i, got, s.cools)
		}
	}
	got, _ := w.cooler.state()
	want := fmt.Sprintf("1->%s", must(w.coldTemplate().DSN(1)))
	if len(got) != 1 || got[0] != want {
		t.Fatalf("Cool calls %v, want [%s]", got, want)
	}
}

// TestResumeMove: a unit already moving, or cold but not retired, is
// handed to the Cooler again at once.
func TestResumeMove(t *testing.T) {
	for _, temp := range []routing.Temperature{routing.Copying, routing.Freezing, routing.Verifying, routing.Cold} {
		t.Run(string(temp), func(t *testing.T) {
			u := hotUnit(1, nil)
			u.Temperature, u.AcceptNew = temp, false
			w := newWorld(t, u, hotUnit(2, nil))
			c := w.controller(w.config(), nil)
			w.round(c)
			waitFor(t, "the cooler's call", func() bool { _, done := w.cooler.state(); return done == 1 })
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOneActive: of two controllers of one table file, the second stands
// by while the first runs, and takes over once the first stops.
func TestOneActive(t *testing.T) {
	w := newWorld(t, hotUnit(1, nil))
	cfg := w.config()
	var log1, log2 syncBuffer
	c1 := w.controller(cfg, slog.New(slog.NewTextHandler(&log1, nil)))
	c2 := w.controller(cfg, slog.New(slog.NewTextHandler(&log2, nil)))
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { c1.Run(ctx1); close(done1) }()
	defer func() { stop1(); <-done1 }()
	waitFor(t, "controller 1 active", func() bool { return c1.Status().Rounds > 0 })

	ctx2, stop2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { c2.Run(ctx2); close(done2) }()
	defer func() { stop2(); <-done2 }()
	waitFor(t, "controller 2 standby", func() bool { return strings.Contains(log2.String(), "standby") })
	// Many of controller 1's rounds, and as many tries of the lock by
	// controller 2 (LockRetry is shorter than Every).
	r := c1.Status().Rounds
	waitFor(t, "controller 1's rounds", func() bool { return c1.Status().Rounds >= r+10 })
	if s := c2.Status(); s.Active || s.Rounds != 0 {
		t.Fatalf("controller 2 = %+v while controller 1 is active", s)
	}
	stop1()
	<-done1
	if c1.Status().Active {
		t.Fatal("controller 1 still active after Run returned")
	}
	waitFor(t, "controller 2 takes over", func() bool { return c2.Status().Active && c2.Status().Rounds > 0 })
}

func TestConfigValidate(t *testing.T) {
	good := lifecycle.DefaultControllerConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	tests := []struct {
		name   string
		change func(c *lifecycle.ControllerConfig)
	}{
		{"every", func(c *lifecycle.ControllerConfig) { c.Every = 0 }},
		{"min hot", func(c *lifecycle.ControllerConfig) { c.MinHot = 0 }},
		{"negative threshold", func(c *lifecycle.ControllerConfig) { c.MaxOrders = -1 }},
		{"template without unit", func(c *lifecycle.ControllerConfig) { c.FreshStorage = "sqlite:data/unit.db" }},
		{"bad cold template", func(c *lifecycle.ControllerConfig) { c.ColdStorage = "postgres:{unit}" }},
		{"lease", func(c *lifecycle.ControllerConfig) { c.LeaseTTL = time.Millisecond }},
		{"clock", func(c *lifecycle.ControllerConfig) { c.Now = nil }},
	}
	for _, tc := range tests {
		c := lifecycle.DefaultControllerConfig()
		tc.change(&c)
		if err := c.Validate(); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
			t.Errorf("%s: Validate() = %v, want PARAM_ERROR", tc.name, err)
		}
	}
}
