package failover_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/failover"
	"tradeunit/health"
	"tradeunit/replication"
	"tradeunit/routing"
)

// world is a unit on three fake servers, seen by fake observers.
type world struct {
	mu        sync.Mutex
	table     *routing.Table
	top       *routing.Topology
	primaryUp bool
	// primaryFenced: the primary answers read-only (a failover stopped
	// between its fence and its unmap).
	primaryFenced bool
	receiving     bool // a replica's receiver is still connected to the primary
	checker       *health.Report
	refuse        bool // the failover finds no safe replica
	stop          bool // the failover stops after unmapping the primary
	calls         int
	now           time.Time

	// stray: replica 3307 replicates from another server than the
	// primary (a failover stopped before re-pointing it).
	stray    bool
	repoints int // RepointStorage calls

	fenced  string // the fenced server: "down", "writable" or "read-only"
	errant  bool   // it holds errant transactions
	rejoins int    // RejoinStorage calls
}

const unitID = tradeunit.UnitID(3)

func newWorld() *world {
	d := func(port int) dsn.DSN {
		return dsn.MustParse(fmt.Sprintf("mysql:tradeunit@tcp(127.0.0.1:%d)/tradeunit_u3", port))
	}
	top := &routing.Topology{Revision: 1}
	top.Set(unitID, routing.Storage{Primary: d(3306), Replicas: []dsn.DSN{d(3307), d(3308)}})
	return &world{table: &routing.Table{Revision: 1, Units: []routing.Unit{{ID: unitID, Available: true, AcceptNew: true}}},
		top: top, primaryUp: true, now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
}

func (w *world) lock() func() { w.mu.Lock(); return w.mu.Unlock }

func (w *world) Current() *routing.Topology { defer w.lock()(); return w.top }

type routes struct{ w *world }

func (r routes) Current() *routing.Table { defer r.w.lock()(); return r.w.table }

func (w *world) Primary(context.Context, dsn.DSN) (bool, error) {
	defer w.lock()()
	if w.primaryUp {
		return w.primaryFenced, nil
	}
	return false, fmt.Errorf("dial: %w", replication.ErrUnreachable)
}

func (w *world) Replica(_ context.Context, d dsn.DSN) (*replication.ReplicaStatus, error) {
	defer w.lock()()
	io := "Connecting"
	if w.receiving && d.Server() == "127.0.0.1:3308" {
		io = "Yes"
	}
	source := 3306
	if w.stray && d.Server() == "127.0.0.1:3307" {
		source = 3309
	}
	return &replication.ReplicaStatus{SourceHost: "127.0.0.1", SourcePort: source, IORunning: io}, nil
}

func (w *world) ReadOnly(context.Context, dsn.DSN) (bool, error) {
	defer w.lock()()
	if w.fenced == "down" || w.fenced == "" {
		return false, replication.ErrUnreachable
	}
	return w.fenced == "read-only", nil
}

func (w *world) RejoinStorage(context.Context, routing.StorageRef, string, admin.FailoverOptions) (*routing.Topology, error) {
	defer w.lock()()
	w.rejoins++
	if w.errant {
		return nil, fmt.Errorf("rejoin: %w", &replication.ErrantError{Addr: "127.0.0.1:3305"})
	}
	return w.top, nil
}

func (w *world) Report(context.Context) (*health.Report, error) {
	defer w.lock()()
	if w.checker == nil {
		return nil, errors.New("checker down")
	}
	return w.checker, nil
}

// FailoverStorage counts the call; it leaves the topology alone, so the
// "dead" primary stays named and the damping is what holds the next one.
func (w *world) FailoverStorage(_ context.Context, ref routing.StorageRef, _ admin.FailoverOptions) (*admin.FailoverResult, error) {
	defer w.lock()()
	w.calls++
	if w.refuse {
		return nil, &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Err: &replication.NoSafeReplicaError{Reasons: []string{"r1: lagging"}}}
	}
	if w.stop {
		w.top = w.top.Clone()
		u, _ := w.top.Unit(unitID)
		u.Fenced, u.Primary = append(u.Fenced, u.Primary), dsn.DSN{}
		return &admin.FailoverResult{Target: ref}, errors.New("failover of unit 3: wait-applied: timeout")
	}
	return &admin.FailoverResult{Target: ref, Revision: 2, Remapped: 200 * time.Millisecond}, nil
}

// RepointStorage counts the call and mends the stray replica.
func (w *world) RepointStorage(context.Context, routing.StorageRef, admin.FailoverOptions) ([]string, error) {
	defer w.lock()()
	w.repoints++
	w.stray = false
	return []string{"127.0.0.1:3307"}, nil
}

type alwaysElected struct{}

func (alwaysElected) Campaign(context.Context) (<-chan struct{}, error) {
	return make(chan struct{}), nil
}
func (alwaysElected) Resign() error { return nil }

func (w *world) controller(t *testing.T, cfg failover.Config, checker bool) *failover.Controller {
	t.Helper()
	cfg.Now = func() time.Time { defer w.lock()(); return w.now }
	deps := failover.Deps{Routes: routes{w}, Topology: w, Observer: w, Failover: w, Election: alwaysElected{},
		Logger: slog.New(slog.DiscardHandler)}
	if checker {
		deps.Checker = w
	}
	c, err := failover.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rounds runs n rounds, each a second after the last.
func (w *world) rounds(c *failover.Controller, n int) {
	for range n {
		c.Round(context.Background())
		w.mu.Lock()
		w.now = w.now.Add(time.Second)
		w.mu.Unlock()
	}
}

func report(verdict string, failing bool) *health.Report {
	return &health.Report{Units: []health.UnitReport{{Unit: unitID, Verdict: verdict, Failing: failing}}}
}

// TestControllerRounds: across rounds, the controller fails a dead primary
// over once every observer agrees, and not otherwise.
func TestControllerRounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(*world, *failover.Config)
		checker bool
		rounds  int
		want    int // FailoverStorage calls
	}{
		{"healthy primary", func(w *world, c *failover.Config) { w.primaryUp = true }, false, 10, 0},
		{"dead: fails over on the FailAfter-th round", func(*world, *failover.Config) {}, false, 3, 1},
		{"dead: not before", func(*world, *failover.Config) {}, false, 2, 0},
		{"a replica still receives", func(w *world, c *failover.Config) { w.receiving = true }, false, 10, 0},
		{"checker says healthy", func(w *world, c *failover.Config) { w.checker = report(health.Healthy, false) }, true, 10, 0},
		{"checker unreachable", func(w *world, c *failover.Config) { w.checker = nil }, true, 10, 0},
		{"checker agrees (ejected)", func(w *world, c *failover.Config) { w.checker = report(health.Ejected, true) }, true, 3, 1},
		{"checker agrees (failing, kept in)", func(w *world, c *failover.Config) { w.checker = report(health.Healthy, true) }, true, 3, 1},
		{"global off", func(w *world, c *failover.Config) { c.Off = true }, false, 10, 0},
		{"label failover=off", func(w *world, c *failover.Config) {
			w.table.Units[0].Labels = map[string]string{failover.OffLabel: "off"}
		}, false, 10, 0},
		{"damped: one per MinInterval", func(w *world, c *failover.Config) { c.MinInterval = time.Minute }, false, 50, 1},
		{"again after MinInterval", func(w *world, c *failover.Config) { c.MinInterval = 10 * time.Second }, false, 30, 3},
		{"topology's LastFailover damps too", func(w *world, c *failover.Config) {
			u, _ := w.top.Unit(unitID)
			u.LastFailover = w.now.Add(-10 * time.Second)
		}, false, 30, 0},
		{"hourly cap", func(w *world, c *failover.Config) { c.MinInterval, c.MaxPerHour = 0, 2 }, false, 30, 2},
		{"stopped half-way: resumed next round", func(w *world, c *failover.Config) { w.stop = true }, false, 5, 3},
		{"no primary, not ours: left to the failover under way", func(w *world, c *failover.Config) {
			u, _ := w.top.Unit(unitID)
			u.Primary = dsn.DSN{}
		}, false, 10, 0},
		{"no primary, not ours, for long: resumed", func(w *world, c *failover.Config) {
			u, _ := w.top.Unit(unitID)
			u.Primary = dsn.DSN{}
			c.ApplyTimeout, c.AckTimeout = 2*time.Second, 2*time.Second
		}, false, 6, 1},
		{"fenced primary still mapped, for a moment: left to the failover under way", func(w *world, c *failover.Config) {
			w.primaryUp, w.primaryFenced = true, true
		}, false, 10, 0},
		{"fenced primary still mapped, for long (a failover killed after its fence): resumed", func(w *world, c *failover.Config) {
			w.primaryUp, w.primaryFenced = true, true
			c.ApplyTimeout, c.AckTimeout = 2*time.Second, 2*time.Second
		}, false, 6, 1},
		{"fenced primary still mapped, but off", func(w *world, c *failover.Config) {
			w.primaryUp, w.primaryFenced, c.Off = true, true, true
			c.ApplyTimeout, c.AckTimeout = 2*time.Second, 2*time.Second
		}, false, 10, 0},
		{"refused: retried every round", func(w *world, c *failover.Config) { w.refuse = true }, false, 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.primaryUp = false
			cfg := failover.DefaultConfig()
			tc.setup(w, &cfg)
			c := w.controller(t, cfg, tc.checker)
			w.rounds(c, tc.rounds)
			if w.calls != tc.want {
				t.Errorf("got %d failovers in %d rounds, want %d", w.calls, tc.rounds, tc.want)
			}
			s := c.Status()
			if w.refuse && s.Refused != int64(w.calls) {
				t.Errorf("status %+v: got %d refused, want %d", s, s.Refused, w.calls)
			}
			if !w.refuse && !w.stop && s.Failovers != int64(w.calls) {
				t.Errorf("status %+v: got %d failovers, want %d", s, s.Failovers, w.calls)
			}
			if w.calls > 0 && !w.refuse && !w.stop && s.LastRTO <= 0 {
				t.Errorf("status %+v: no RTO after a failover", s)
			}
		})
	}
}

// TestControllerRTO: the RTO runs from the first failed check to the new
// primary in the topology: the rounds waited plus the failover's remap.
func TestControllerRTO(t *testing.T) {
	w := newWorld()
	w.primaryUp = false
	c := w.controller(t, failover.DefaultConfig(), false)
	w.rounds(c, 3)
	// Rounds one second apart: failed at 0s, 1s, 2s; failover at 2s,
	// remapped 200ms later.
	if got, want := c.Status().LastRTO, 2200*time.Millisecond; got != want {
		t.Errorf("got RTO %v, want %v", got, want)
	}
}

// TestControllerRepointsStrayReplicas: a replica left replicating from an
// old primary (a failover killed after its remap) is re-pointed to the
// healthy primary once, and not while failover is off or the primary is
// fenced.
func TestControllerRepointsStrayReplicas(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*world, *failover.Config)
		want  int
	}{
		{"healthy primary, stray replica: re-pointed once", func(*world, *failover.Config) {}, 1},
		{"off", func(_ *world, c *failover.Config) { c.Off = true }, 0},
		{"fenced primary: left to the failover", func(w *world, _ *failover.Config) { w.primaryFenced = true }, 0},
		{"dead primary: left to the failover", func(w *world, _ *failover.Config) { w.primaryUp = false }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.stray = true
			cfg := failover.DefaultConfig()
			tc.setup(w, &cfg)
			c := w.controller(t, cfg, false)
			w.rounds(c, 2) // fewer than FailAfter: the dead primary is not failed over either
			if w.repoints != tc.want || c.Status().Repoints != int64(tc.want) {
				t.Fatalf("got %d re-points (status %+v), want %d", w.repoints, c.Status(), tc.want)
			}
		})
	}
	w := newWorld()
	c := w.controller(t, failover.DefaultConfig(), false)
	w.rounds(c, 5)
	if w.repoints != 0 {
		t.Fatalf("replicas following the primary re-pointed %d times", w.repoints)
	}
}

// TestControllerRejoin: with Config.Rejoin, a fenced old primary is
// rejoined once it answers read-only, never while down or writable, and
// one refused for errant transactions is not tried again at once.
func TestControllerRejoin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rejoin   bool
		fenced   string
		errant   bool
		off      bool
		want     int // RejoinStorage calls in 10 rounds
		rejoined int64
		refused  int64
	}{
		{"back read-only", true, "read-only", false, false, 10, 10, 0}, // the fake keeps it fenced, so each round rejoins
		{"rejoin off", false, "read-only", false, false, 0, 0, 0},
		{"still down", true, "down", false, false, 0, 0, 0},
		{"back writable", true, "writable", false, false, 0, 0, 0},
		{"errant: refused once, held back", true, "read-only", true, false, 1, 0, 1},
		{"unit labelled failover=off", true, "read-only", false, true, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			u, _ := w.top.Unit(unitID)
			u.Fenced = []dsn.DSN{dsn.MustParse("mysql:tradeunit@tcp(127.0.0.1:3305)/tradeunit_u3")}
			w.fenced, w.errant = tc.fenced, tc.errant
			if tc.off {
				w.table.Units[0].Labels = map[string]string{failover.OffLabel: "off"}
			}
			cfg := failover.DefaultConfig()
			cfg.Rejoin = tc.rejoin
			c := w.controller(t, cfg, false)
			w.rounds(c, 10)
			s := c.Status()
			if w.rejoins != tc.want || s.Rejoins != tc.rejoined || s.RejoinsRefused != tc.refused {
				t.Errorf("got %d rejoin calls, status %+v; want %d calls, %d rejoined, %d refused", w.rejoins, s, tc.want, tc.rejoined, tc.refused)
			}
			if w.calls != 0 {
				t.Errorf("got %d failovers of a healthy primary, want 0", w.calls)
			}
		})
	}
}
