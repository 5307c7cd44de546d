package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/daemon/lifecycled"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
)

func TestCoolUnderLoadSQLite(t *testing.T) { testCoolUnderLoad(t, "sqlite") }

func TestCoolUnderLoadMySQL(t *testing.T) { testCoolUnderLoad(t, "mysql") }

// testCoolUnderLoad moves a warm unit to cold storage while creates go on
// (to the other units), its orders are paid, refunded and read: no create
// fails, every update and read of the cooling unit's orders succeeds, no
// update waits longer than the freeze window (plus the time the logic
// services take to see the switch), the cold copy serves them after the
// switch, and the old data is gone only at the end.
func testCoolUnderLoad(t *testing.T, storage string) {
	c := startCluster(t, options{storage: storage, units: 3, replicas: 2, unitTimeout: patientUnitTimeout})
	api := newClient(t, c, 0)
	orders := ordersOn(t, api, 1, 40)
	oldDSN := c.Topology().Units[0].Primary
	to := coldDSN(t, c, storage)

	runAdmin(t, c, "unit", "set", "--unit", "1", "--temperature", "warm", "--routes", c.RoutesPath)
	waitFor(t, 5*time.Second, "the proxy to see unit 1 warm", func() bool {
		u, _ := c.Routes().Unit(1)
		return u.Temperature == routing.Warm
	})

	creates := startLoad(t, api, 3, "cool")
	updates := startUpdates(t, api, orders, 3)
	updates.waitDone(30)

	out := runAdmin(t, c, "unit", "cool", "--unit", "1", "--to", to.String(), "--retire", "--routes", c.RoutesPath)
	t.Logf("admin unit cool:\n%s", out)
	window := freezeWindow(t, out)
	// The mover bounds the freeze by --max-freeze until the switch and
	// --settle after it (1 s each).
	if window > 2*time.Second {
		t.Fatalf("freeze window %v, over the 2 s the mover allows", window)
	}
	switched := time.Now()

	updates.waitDone(updates.ok.Load() + 30) // served by the cold copy
	results := updates.halt()
	created := creates.halt()

	if f := failed(created); len(f) > 0 {
		t.Fatalf("%d of %d creates failed during the move, first %+v", len(f), len(created), f[0])
	}
	var slowest time.Duration
	for _, r := range results {
		if r.err != "" {
			t.Fatalf("%s of order %s failed during the move: %s", r.what, r.orderNo, r.err)
		}
		if r.what != "read" {
			slowest = max(slowest, r.took)
		}
	}
	// An update waits from the freeze until its logic service has seen
	// the switch (the topology file is polled every 200 ms) and opened the
	// copy.
	if bound := window + time.Second; slowest > bound {
		t.Fatalf("an update waited %v, longer than the %v freeze window + 1 s", slowest, window)
	}
	t.Logf("%d updates and reads of unit 1's orders, %d creates elsewhere, all served; freeze window %v, slowest update %v (%v after the move)",
		len(results), len(created), window, slowest, time.Since(switched).Round(time.Millisecond))

	// The cluster's own view follows the files within a poll.
	waitFor(t, 5*time.Second, "unit 1 retired on its cold copy", func() bool {
		st, _ := c.Topology().Unit(1)
		u, _ := c.Routes().Unit(1)
		return st.Primary == to && st.Cold && st.Previous == nil && st.ColdCopy == (dsn.DSN{}) &&
			u.Temperature == routing.Retired && !u.TakesNewOrders()
	})
	if n := storageRows(t, oldDSN, "orders"); n != 0 {
		t.Fatalf("the old storage keeps %d orders after the retirement", n)
	}
	// Every order of unit 1 is served by the cold copy as the clients last
	// saw it.
	for _, o := range updates.final() {
		got := api.call("GET", "/v3/orders/"+o.orderNo, nil)
		want(t, "read "+o.orderNo+" after the move", got, 200, "")
		if stateRank[got.str("trade_state")] < stateRank[o.state] {
			t.Fatalf("order %s is %s after the move, clients were told %s", o.orderNo, got.str("trade_state"), o.state)
		}
	}
}

// TestCoolResumesAfterKill kills the mover once after each step in turn,
// and the controller and the mover in the middle of the live copy: each
// new run resumes where the last stopped, every order of the unit is readable throughout, and the
// cold copy ends with exactly the rows the old storage had (nothing lost,
// nothing twice).
func TestCoolResumesAfterKill(t *testing.T) {
	c := startCluster(t, options{units: 2, replicas: 1, unitTimeout: patientUnitTimeout})
	api := newClient(t, c, 0)
	orders := ordersOn(t, api, 1, 60)
	oldDSN := c.Topology().Units[0].Primary
	to := coldDSN(t, c, "sqlite")
	runAdmin(t, c, "unit", "set", "--unit", "1", "--temperature", "warm", "--routes", c.RoutesPath)
	before := storageSize(t, oldDSN)
	step := func() routing.Temperature { u, _ := c.Routes().Unit(1); return u.Temperature }
	waitFor(t, 5*time.Second, "the cluster to see unit 1 warm", func() bool { return step() == routing.Warm })

	reads := startUpdates(t, api, orders, 0) // reads only: a killed freeze holds updates up
	cool := func(env string, extra ...string) *exec.Cmd {
		args := append([]string{"admin", "unit", "cool", "--unit", "1", "--to", to.String(), "--routes", c.RoutesPath}, extra...)
		cmd := exec.Command(binary, append(args, adminArgs(c)...)...)
		cmd.Env = append(os.Environ(), env)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	kill := func(cmd *exec.Cmd) {
		t.Helper()
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}

	// A dry run tells the plan and changes nothing.
	plan := runAdmin(t, c, "unit", "cool", "--unit", "1", "--to", to.String(), "--dry-run", "--routes", c.RoutesPath)
	if !strings.Contains(plan, fmt.Sprintf("data: %d rows", before.Rows)) || !strings.Contains(plan, "estimated time") || step() != routing.Warm {
		t.Fatalf("dry run printed:\n%s\nand left the unit %s; want the sizes, an estimate and the unit warm", plan, step())
	}
	if _, err := os.Stat(to.Path); err == nil {
		t.Fatal("the dry run made the cold copy")
	}

	// The controller, in the middle of the live copy (slow ranges), killed
	// once the copy holds some rows.
	ctl := exec.Command(binary, append([]string{"lifecycle", "--routes", c.RoutesPath, "--every", "100ms", "--log-level", "debug",
		"--cool-below", "1000", "--cool-window", "1s", "--cool-after", "100ms",
		"--cold-storage", "sqlite:" + filepath.Join(filepath.Dir(to.Path), "unit-{unit}.db"),
		"--range-rows", "5", "--pause", "50ms"}, adminArgs(c)...)...)
	var ctlOut strings.Builder
	ctl.Stdout, ctl.Stderr = &ctlOut, &ctlOut
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Process.Kill(); ctl.Wait() })
	defer func() {
		if t.Failed() {
			t.Logf("controller:\n%s", ctlOut.String())
		}
	}()
	waitFor(t, 30*time.Second, "the controller's live copy to begin", func() bool {
		_, err := os.Stat(to.Path)
		return err == nil && step() == routing.Copying && storageRows(t, to, "orders") > 0
	})
	kill(ctl)
	// The mover, in the middle of the live copy too.
	cmd := cool("", "--range-rows", "5", "--pause", "50ms")
	rows := storageRows(t, to, "orders")
	waitFor(t, 30*time.Second, "the live copy to go on", func() bool { return storageRows(t, to, "orders") > rows })
	kill(cmd)
	// After each step, as recorded.
	for _, s := range []struct{ hang, next routing.Temperature }{
		{routing.Copying, routing.Freezing}, {routing.Freezing, routing.Verifying}, {routing.Verifying, routing.Cold},
	} {
		cmd := cool("TRADEUNIT_LIFECYCLE_HANG_AFTER=" + string(s.hang))
		waitFor(t, 30*time.Second, fmt.Sprintf("the mover to record %s", s.next), func() bool { return step() == s.next })
		if s.next == routing.Cold {
			// Cold: the old storage is kept; its rows are what the copy
			// must hold.
			before = storageSize(t, oldDSN)
			if out := runAdmin(t, c, "units", "--storage", "--routes", c.RoutesPath); !strings.Contains(out, "previous") ||
				!strings.Contains(out, oldDSN.String()) {
				t.Fatalf("admin units --storage on a cold unit lacks the previous storage:\n%s", out)
			}
		}
		kill(cmd)
	}
	after := storageSize(t, to)
	for i, tb := range before.Tables {
		want := tb.Rows
		if tb.Name == "orders" || tb.Name == "order_events" {
			want++ // the switch's marker, a probe order, and its event
		}
		if got := after.Tables[i]; got.Rows != want {
			t.Fatalf("table %s: %d rows in the cold copy, want %d (%d in the old storage, and the marker)", tb.Name, got.Rows, want, tb.Rows)
		}
	}
	out := runAdmin(t, c, "unit", "cool", "--unit", "1", "--retire", "--routes", c.RoutesPath)
	t.Logf("last run:\n%s", out)
	waitFor(t, 5*time.Second, "the proxy to see unit 1 retired", func() bool { return step() == routing.Retired })
	results := reads.halt()
	for _, r := range results {
		if r.err != "" {
			t.Fatalf("a read of order %s failed while the mover was killed and resumed: %s", r.orderNo, r.err)
		}
	}
	t.Logf("%d reads of unit 1's orders, all served", len(results))
	for _, o := range orders {
		want(t, "read "+o+" from the cold copy", api.call("GET", "/v3/orders/"+o, nil), 200, "")
	}
}

// TestLifecycleController: with thresholds small enough to watch, the
// controller adds a fresh unit, warms unit 1 once it holds 100 orders,
// moves it to cold storage once quiet, and retires its old data, while
// creates go on; no create fails and every acknowledged order reads back.
func TestLifecycleController(t *testing.T) {
	lc := lifecycled.DefaultConfig()
	l := &lc.Lifecycle
	l.Every, l.MaxOrders, l.MaxBytes, l.MaxAge = 200*time.Millisecond, 100, 0, 0
	l.CoolBelow, l.CoolWindow, l.CoolAfter = 0.5, time.Second, time.Second
	c := startCluster(t, options{units: 2, replicas: 1, unitTimeout: patientUnitTimeout, lifecycle: &lc,
		routes: func(tbl *routing.Table) { tbl.Units[1].Labels = map[string]string{"lifecycle": "off"} }})
	api := newClient(t, c, 0)
	load := startLoad(t, api, 2, "ctl")

	// The fresh unit replacing unit 1 is kept out of the policy, so that it
	// does not start a chain of replacements within the test.
	waitFor(t, 30*time.Second, "a fresh unit in the routing table", func() bool { _, ok := c.Routes().Unit(3); return ok })
	runAdmin(t, c, "unit", "set", "--unit", "3", "--label", "lifecycle=off", "--routes", c.RoutesPath)
	seen := map[routing.Temperature]bool{}
	waitFor(t, 60*time.Second, "unit 1 retired", func() bool {
		u, _ := c.Routes().Unit(1)
		seen[u.Temperature] = true
		return u.Temperature == routing.Retired
	})
	load.waitCreates(len(load.snapshot())+20, 3) // creates go on, on the fresh unit too
	rs := load.halt()

	if !seen[routing.Warm] && !seen[routing.Copying] {
		t.Errorf("unit 1 went through %v, want warm on the way", seen)
	}
	if f := failed(rs); len(f) > 0 {
		t.Fatalf("%d of %d creates failed, first %+v", len(f), len(rs), f[0])
	}
	counts := perUnit(rs)
	if counts[1] < 100 || counts[3] == 0 {
		t.Fatalf("creates per unit %v: want unit 1 filled to its 100 and the fresh unit 3 used", counts)
	}
	for _, r := range rs {
		got := api.call("GET", "/v3/orders/"+r.orderNo, nil)
		want(t, "read back "+r.orderNo, got, 200, "")
	}
	history := runAdmin(t, c, "history", "--limit", "40", "--routes", c.RoutesPath)
	for _, what := range []string{"unit warm 1", "unit 1 retired", "unit add 3"} {
		if !strings.Contains(history, what) {
			t.Errorf("the history lacks %q:\n%s", what, history)
		}
	}
	t.Logf("%d creates (%v per unit), all acknowledged orders read back; unit 1 passed %v", len(rs), counts, seen)
}

// ordersOn creates orders until n are on unit u, and returns their numbers.
func ordersOn(t *testing.T, api *client, u tradeunit.UnitID, n int) []string {
	t.Helper()
	var out []string
	for i := 0; len(out) < n; i++ {
		if i > 50*n {
			t.Fatalf("only %d of %d orders landed on unit %d", len(out), n, u)
		}
		r := api.call("POST", "/v3/orders", createBody(uniq(fmt.Sprintf("on%d-%d", u, i)), 1000))
		want(t, "create", r, 200, "")
		if unitOf(r) == u {
			out = append(out, r.str("order_no"))
		}
	}
	return out
}

// coldDSN is where a test moves unit data to: a file beside the cluster's,
// or a fresh MySQL database.
func coldDSN(t *testing.T, c *cluster.Cluster, storage string) dsn.DSN {
	if storage == "mysql" {
		return storetest.NewMySQLDatabase(t)
	}
	return dsn.MustParse("sqlite:" + filepath.Join(c.Dir, "cold", "unit-1.db")) // the mover makes the folder
}

func storageSize(t *testing.T, d dsn.DSN) sqlstore.StoreSize {
	t.Helper()
	s, err := sqlstore.OpenReadOnly(context.Background(), d, storetest.TestPasswords())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size, err := s.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return size
}

func storageRows(t *testing.T, d dsn.DSN, table string) int64 {
	t.Helper()
	for _, tb := range storageSize(t, d).Tables {
		if tb.Name == table {
			return tb.Rows
		}
	}
	t.Fatalf("no table %s in %s", table, d)
	return 0
}

var freezeRE = regexp.MustCompile(`updates waited at most ([0-9.]+[mµn]?s)`)

func freezeWindow(t *testing.T, out string) time.Duration {
	t.Helper()
	m := freezeRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("admin unit cool printed no freeze window:\n%s", out)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// updates pays, refunds and reads a set of orders from several workers
// until halted, recording every call.
type updates struct {
	t    *testing.T
	api  *client
	stop atomic.Bool
	wg   sync.WaitGroup
	ok   atomic.Int64

	mu      sync.Mutex
	results []update
	state   map[string]string // order → trade_state last acknowledged
	refunds atomic.Int64
}

type update struct {
	what, orderNo, err string
	took               time.Duration
}

type orderState struct{ orderNo, state string }

var stateRank = map[string]int{"NOTPAY": 1, "SUCCESS": 2, "REFUND": 3}

// startUpdates starts workers over orders: each in turn pays an unpaid
// order, refunds 1 of a paid one and reads it. With workers 0, one worker
// only reads.
func startUpdates(t *testing.T, api *client, orders []string, workers int) *updates {
	u := &updates{t: t, api: api, state: map[string]string{}}
	readOnly := workers == 0
	for w := range max(workers, 1) {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			for i := w; !u.stop.Load(); i += max(workers, 1) {
				o := orders[i%len(orders)]
				if !readOnly {
					u.pay(o)
					u.refund(o)
				}
				u.read(o)
			}
		}()
	}
	return u
}

func (u *updates) record(what, orderNo string, start time.Time, r response, err error, wantStatus int) {
	rec := update{what: what, orderNo: orderNo, took: time.Since(start)}
	switch {
	case err != nil:
		rec.err = err.Error()
	case r.status != wantStatus:
		rec.err = fmt.Sprintf("status %d %s %s", r.status, r.code(), r.str("message"))
	default:
		u.ok.Add(1)
	}
	u.mu.Lock()
	u.results = append(u.results, rec)
	if rec.err == "" {
		told := r.str("trade_state")
		if what == "refund" {
			told = "REFUND"
		}
		// Workers share orders, so answers arrive in any order; a
		// state only moves forward.
		if stateRank[told] > stateRank[u.state[orderNo]] {
			u.state[orderNo] = told
		}
	}
	u.mu.Unlock()
}

func (u *updates) pay(o string) {
	start := time.Now()
	// The same payment each time: a repeated pay is answered 200.
	r, err := u.api.try("POST", "/v3/orders/"+o+"/pay", map[string]any{"payment_id": "pay-" + o})
	u.record("pay", o, start, r, err, 200)
}

func (u *updates) refund(o string) {
	start := time.Now()
	r, err := u.api.try("POST", "/v3/refunds", map[string]any{"order_no": o, "out_refund_no": fmt.Sprintf("r-%d", u.refunds.Add(1)),
		"amount": map[string]any{"refund": 1, "currency": "CNY"}, "reason": "cool"})
	u.record("refund", o, start, r, err, 200)
}

func (u *updates) read(o string) {
	start := time.Now()
	r, err := u.api.try("GET", "/v3/orders/"+o, nil)
	u.record("read", o, start, r, err, 200)
}

// waitDone waits until n calls have succeeded.
func (u *updates) waitDone(n int64) {
	u.t.Helper()
	waitFor(u.t, 60*time.Second, fmt.Sprintf("%d updates and reads", n), func() bool { return u.ok.Load() >= n })
}

func (u *updates) halt() []update {
	u.stop.Store(true)
	u.wg.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]update(nil), u.results...)
}

// final is every order with the state last acknowledged to a client.
func (u *updates) final() []orderState {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []orderState
	for o, s := range u.state {
		out = append(out, orderState{o, s})
	}
	return out
}
