package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tradeunit/daemon/failoverd"
	"tradeunit/daemon/healthd"
	"tradeunit/replication"
	"tradeunit/replication/localdb"
	"tradeunit/routing"
)

// TestAutoFailover kills -9 the MariaDB primary of a replicated unit under
// create load with the failover controller running (its Main, in the test
// process, with fast settings and the health checker as its second
// observer), and no operator. It
// checks that the controller alone gives the unit a new primary, that the
// unit takes changes again within a bound, that every acknowledged order is
// there (RPO = 0), that there were never two writable primaries, and that
// the old primary stays listed as fenced until, restarted read-only as a
// replica, the controller rejoins it. Before the kill, rounds of checks
// on a healthy unit fail nothing over.
func TestAutoFailover(t *testing.T) {
	c := startHA(t, haOptions{sqliteUnits: 1})
	ctx := context.Background()
	old := c.storage().Primary
	oldIn := c.instance(old)
	watch := watchPrimaries(t, c.set)

	// The health checker, probing through the logic services, is the
	// second observer: the controller fails over only once it sees the unit
	// failing too.
	checker := healthd.NewMain()
	checker.Config.Listen, checker.Routes = "127.0.0.1:0", c.routes
	checker.Config.Health.Interval, checker.Config.Health.ProbeTimeout = 100*time.Millisecond, time.Second
	checker.Logger = slog.New(slog.DiscardHandler)
	if err := checker.Run(ctx); err != nil {
		t.Fatal(err)
	}
	defer checker.Close()

	m, logs := startFailoverController(t, c, checker.URL())

	load := startHALoad(c, 8)
	load.waitChanges(t, 20*time.Second, 20, c.unit, time.Time{}, "before the kill")
	waitFor(t, 10*time.Second, "ten rounds of the failover controller", func() bool { return m.Controller.Status().Rounds >= 10 })
	if s := m.Controller.Status(); s.Failovers+s.Refused > 0 {
		t.Fatalf("failover controller %+v before any fault, want no failover", s)
	}

	kill := time.Now()
	if err := oldIn.Kill(); err != nil {
		t.Fatal(err)
	}
	c.waitNewPrimary(30*time.Second, old)
	remapped := time.Since(kill)
	load.waitChanges(t, 30*time.Second, 10, c.unit, time.Now(), "after the automatic failover")
	orders, events, errs := load.halt()
	for _, e := range errs {
		t.Error(e)
	}

	var recovered time.Time
	for _, e := range events {
		if e.unit == c.unit && e.ok && (e.op == "pay" || e.op == "create") && e.start.After(kill) &&
			(recovered.IsZero() || e.end.Before(recovered)) {
			recovered = e.end
		}
	}
	if recovered.IsZero() {
		t.Fatal("the unit took no change after the failover")
	}
	rto := recovered.Sub(kill)
	s := m.Controller.Status()
	creates := countEvents(events, "create", 0, kill, recovered)
	t.Logf("automatic failover: kill → new primary in the topology %v → unit takes writes again %v; controller's RTO (first failed check → topology) %v; %d failover(s)",
		remapped.Round(time.Millisecond), rto.Round(time.Millisecond), s.LastRTO.Round(time.Millisecond), s.Failovers)
	t.Logf("RTO (kill → unit takes writes again): %v", rto.Round(time.Millisecond))
	// The checker's computed availability of create, against what the
	// clients saw: creates retry on other units, so both stay whole while
	// one unit of two is out.
	for _, p := range checker.Checker.Report().Partitions {
		if p.Name == routing.DefaultPartition {
			t.Logf("checker's availability of the partition after the outage: create %.4f, one order's calls %.4f", p.Availability.Create, p.Availability.Order)
			if p.Availability.Create < 0.99 {
				t.Errorf("checker's create availability %.4f, but clients saw every create succeed", p.Availability.Create)
			}
		}
	}
	t.Logf("creates during the outage: %d of %d succeeded (%.1f%%)", creates.ok, creates.total, share(creates.ok, creates.total))
	logFailoverSteps(t, logs)
	if !strings.Contains(logs.String(), "checker: failing") {
		t.Error("the controller failed over without the health checker seeing the unit failing")
	}
	if s.Failovers != 1 {
		t.Errorf("controller %+v: got %d failovers, want 1", s, s.Failovers)
	}
	const bound = 30 * time.Second // generous: the figure is logged above
	if rto > bound {
		t.Errorf("RTO %v, want at most %v", rto, bound)
	}
	if creates.ok != creates.total {
		t.Errorf("creates during the outage: got %d of %d, want all", creates.ok, creates.total)
	}
	for _, e := range events {
		if e.status >= 500 && e.status != 503 {
			t.Errorf("%s on unit %d at kill%+v answered %d %s, want 200 or 503", e.op, e.unit, e.start.Sub(kill).Round(time.Millisecond), e.status, e.code)
		}
	}
	settlePaysAndVerify(t, c, orders)
	if st := c.storage(); !slices.Contains(st.Fenced, old) {
		t.Errorf("storage after the failover: got %+v, want the old primary %s listed as fenced", st, old.Server())
	}

	// The old primary, restarted read-only as a replica, is rejoined by the
	// controller (or, holding errant transactions, refused: rebuilt, then
	// rejoined).
	if err := oldIn.StartAs(ctx, localdb.Replica); err != nil {
		t.Fatal(err)
	}
	rebuilt := false
	waitFor(t, 20*time.Second, "the controller rejoining the old primary", func() bool {
		if s := m.Controller.Status(); s.RejoinsRefused > 0 && !rebuilt {
			t.Logf("old primary holds errant transactions: the controller refused it; rebuilt")
			if err := oldIn.Rebuild(ctx); err != nil {
				t.Fatal(err)
			}
			rebuilt = true
		}
		st := c.storage()
		return slices.Contains(st.Replicas, old) && len(st.Fenced) == 0
	})
	waitFor(t, 15*time.Second, "old primary replicating from the new one", func() bool {
		s, err := replication.Inspect(ctx, oldIn.RootDSN())
		return err == nil && s.Replica != nil && s.Replica.Receiving() && s.Replica.SQLRunning
	})
	t.Logf("rejoin: the old primary is a replica again (%+v)", m.Controller.Status())
	watch.check(t)
}

// startFailoverController runs the failover controller on c's routing
// table, in the test process (its Main), with fast settings and rejoin
// on; healthURL is its second observer's, the health checker ("": none).
// It stops, and on failure logs its tail, when the test ends.
func startFailoverController(t *testing.T, c *haCluster, healthURL string) (*failoverd.Main, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	m := failoverd.NewMain()
	m.Logger = slog.New(slog.NewTextHandler(logs, nil))
	m.Config.Routes, m.Config.Secrets = c.path, c.set.SecretsPath()
	f := &m.Config.Failover
	f.Every, f.FailAfter, f.CheckTimeout, f.LockRetry = 100*time.Millisecond, 3, 300*time.Millisecond, 50*time.Millisecond
	f.Rejoin, f.HealthURL = true, healthURL
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		if t.Failed() {
			t.Logf("failover controller log (tail):\n%s", tail(logs.String(), 60))
		}
	})
	return m, logs
}

// logFailoverSteps logs the controller's decisions to fail over and the
// steps of its failovers.
func logFailoverSteps(t *testing.T, logs *syncBuffer) {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "failover step") || strings.Contains(line, "failover done") || strings.Contains(line, "outcome=failover") {
			t.Logf("  controller: %s", line)
		}
	}
}

// syncBuffer is a bytes.Buffer that the controller's goroutines may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
