package e2e

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit/admin"
	"tradeunit/cluster"
	"tradeunit/daemon/failoverd"
	"tradeunit/replication"
	"tradeunit/replication/localdb"
	"tradeunit/routing"
)

// TestFailoverControllerKilledMidFailover: the failover controller, a real
// process, is killed -9 right after one step of its failover of a dead
// primary (tradeunit failover-controller --crash-after-step), in turn after
// each step that leaves a different state behind: replicas stopped with the
// dead primary still mapped; the entry without a primary; a replica
// promoted but mapped nowhere; the new primary mapped with its replicas not
// yet re-pointed. Each time a second controller, started then, finishes
// the failover: the unit takes changes again, there are never two writable
// primaries (polled throughout), and every acknowledged order is there.
func TestFailoverControllerKilledMidFailover(t *testing.T) {
	c := startHA(t, haOptions{sqliteUnits: 1})
	ctx := context.Background()
	watch := watchPrimaries(t, c.set)
	load := startHALoad(c, 4)
	load.waitChanges(t, 20*time.Second, 20, c.unit, time.Time{}, "before the first kill")

	controller := func(name, crashAfter string) *cluster.Process {
		cfg := failoverd.DefaultConfig()
		cfg.Routes, cfg.Secrets, cfg.CrashAfterStep = c.path, c.set.SecretsPath(), crashAfter
		f := &cfg.Failover
		f.Every, f.FailAfter, f.CheckTimeout, f.LockRetry = 100*time.Millisecond, 3, 300*time.Millisecond, 50*time.Millisecond
		// A failover found stopped by the next controller is resumed after
		// ApplyTimeout + AckTimeout; each round fails the same unit over.
		f.ApplyTimeout, f.AckTimeout, f.MinInterval, f.MaxPerHour = time.Second, time.Second, 0, 100
		p := cluster.NewProcess(binary, c.dir, name, func(listen, addrFile string) []string {
			cfg.Metrics, cfg.MetricsAddrFile = listen, addrFile
			return cfg.Args()
		})
		if err := p.Start(ctx); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			p.Kill()
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", name, tail(readLog(p), 40))
			}
		})
		return p
	}
	opts := admin.DefaultFailoverOptions()
	for _, step := range []string{"stop-receiving", "unmap", "promote", "remap"} {
		old := c.storage().Primary
		oldIn := c.instance(old)
		crasher := controller("failover-crash-"+step, step)
		waitFor(t, 10*time.Second, "the first controller active", func() bool { return logHas(crasher, "failover controller active") })
		if err := oldIn.Kill(); err != nil {
			t.Fatal(err)
		}
		kill := time.Now()
		waitFor(t, 20*time.Second, "the controller killing itself after step "+step, func() bool { return !crasher.Running() })
		if !logHas(crasher, "crashing, as --crash-after-step asks") {
			t.Fatalf("controller exited without crashing after step %s; its log:\n%s", step, tail(readLog(crasher), 30))
		}
		data, err := os.ReadFile(routing.TopologyPath(c.path)) // as the crash left it, not as last polled
		if err != nil {
			t.Fatal(err)
		}
		top, err := routing.ParseTopology(data)
		if err != nil {
			t.Fatal(err)
		}
		left, _ := top.Unit(c.unit)
		t.Logf("killed after %s: topology primary %q, replicas %d, fenced %d", step, left.Primary.Server(), len(left.Replicas), len(left.Fenced))

		finisher := controller("failover-finish-"+step, "")
		c.waitNewPrimary(20*time.Second, old)
		load.waitChanges(t, 20*time.Second, 5, c.unit, time.Now(), "after the second controller finished (killed after "+step+")")
		t.Logf("killed after %s: the unit takes changes again %v after the primary's kill", step, time.Since(kill).Round(time.Millisecond))
		if err := finisher.Stop(); err != nil {
			t.Fatal(err)
		}

		// The dead primary comes back as a replica (rebuilt if it holds
		// transactions no one acknowledged), ready to be the next one.
		if err := oldIn.StartAs(ctx, localdb.Replica); err != nil {
			t.Fatal(err)
		}
		_, err = c.admin.Rejoin(ctx, c.unit, old.Server(), opts)
		if errors.Is(err, replication.ErrErrantGTIDs) {
			if err = oldIn.Rebuild(ctx); err == nil {
				_, err = c.admin.Rejoin(ctx, c.unit, old.Server(), opts)
			}
		}
		if err != nil {
			t.Fatalf("rejoin %s: %v", old.Server(), err)
		}
		if st := c.storage(); !slices.Contains(st.Replicas, old) || len(st.Fenced) != 0 || len(st.Replicas) != 2 {
			t.Fatalf("after the rejoin: storage %+v, want the old primary a replica again", st)
		}
		waitFor(t, 15*time.Second, "every replica following the new primary", func() bool {
			st := c.storage()
			for _, r := range st.Replicas {
				s, err := replication.Inspect(ctx, c.instance(r).RootDSN())
				if err != nil || s.Replica == nil || !s.Replica.Receiving() || s.Replica.SourcePort != c.instance(st.Primary).Port {
					return false
				}
			}
			return true
		})
	}

	orders, _, errs := load.halt()
	for _, e := range errs {
		t.Error(e)
	}
	settlePaysAndVerify(t, c, orders)
	watch.check(t)
}

// readLog is a process's log so far.
func readLog(p *cluster.Process) string {
	data, _ := os.ReadFile(p.LogPath())
	return string(data)
}

// logHas reports whether a process's log contains s.
func logHas(p *cluster.Process, s string) bool { return strings.Contains(readLog(p), s) }
