package replication_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

// figures are the durations of a failover's steps, and when the new
// primary was promoted.
type figures struct {
	fence, inspect, wait, promote, repoint time.Duration
	promotedAt                             time.Time
}

func (f figures) promoted() time.Duration { return f.fence + f.inspect + f.wait + f.promote }

// failover runs the manual failover sequence after old was lost: fence it
// (unreachable is fine: it was killed), inspect the replicas, choose the
// most advanced, wait until it has applied what it received, promote it,
// re-point the others. It returns the new primary and the other replicas.
func failover(t *testing.T, old *localdb.Instance, replicas []*localdb.Instance) (*localdb.Instance, []*localdb.Instance, figures) {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	var f figures
	step := func(d *time.Duration) func() {
		t0 := time.Now()
		return func() { *d = time.Since(t0) }
	}

	done := step(&f.fence)
	if err := replication.Fence(ctx, old.RootDSN()); err != nil && !errors.Is(err, replication.ErrUnreachable) {
		t.Fatalf("fence %s: %v", old.Name, err)
	}
	done()

	done = step(&f.inspect)
	var cands []replication.Candidate
	for _, r := range replicas {
		st, err := replication.Inspect(ctx, r.RootDSN())
		cands = append(cands, replication.Candidate{Name: r.Name, Status: st, Err: err})
	}
	chosen, err := replication.MostAdvanced(cands, replication.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	done()
	var primary *localdb.Instance
	var others []*localdb.Instance
	for _, r := range replicas {
		if r.Name == chosen.Name {
			primary = r
		} else {
			others = append(others, r)
		}
	}
	for _, c := range cands {
		rep := c.Status.Replica
		t.Logf("candidate %s: received %s, applied %s, receiver %s", c.Name, rep.ReceivedPos, rep.AppliedPos, rep.IORunning)
	}

	done = step(&f.wait)
	if err := replication.WaitApplied(ctx, primary.RootDSN()); err != nil {
		t.Fatal(err)
	}
	done()
	done = step(&f.promote)
	if err := replication.Promote(ctx, primary.RootDSN()); err != nil {
		t.Fatal(err)
	}
	done()
	f.promotedAt = time.Now()
	done = step(&f.repoint)
	for _, r := range others {
		if err := replication.Repoint(ctx, r.RootDSN(), set.Source(primary)); err != nil {
			t.Fatal(err)
		}
	}
	done()
	t.Logf("failover to %s: fence %v, inspect+choose %v, wait applied %v, promote %v (promoted %v after the start), repoint %v",
		primary.Name, f.fence.Round(time.Microsecond), f.inspect.Round(time.Microsecond), f.wait.Round(time.Microsecond),
		f.promote.Round(time.Microsecond), f.promoted().Round(time.Microsecond), f.repoint.Round(time.Microsecond))
	return primary, others, f
}

// rejoin restarts old as a replica (init_rpl_role=SLAVE), checks it holds
// no errant transaction, rejoins it to primary and waits until it has
// caught up and holds the same rows.
func rejoin(t *testing.T, old, primary *localdb.Instance, tbl string) {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	errant, err := replication.ErrantGTIDs(ctx, old.RootDSN(), primary.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	if len(errant) > 0 {
		t.Fatalf("%s holds errant transactions %s after a restart as a replica", old.Name, errant)
	}
	if err := replication.Rejoin(ctx, old.RootDSN(), primary.RootDSN(), set.Source(primary)); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, primary, old)
	if got, want := len(ids(t, old, tbl)), len(ids(t, primary, tbl)); got != want {
		t.Errorf("%s after rejoining: %d rows, want %d as on %s", old.Name, got, want, primary.Name)
	}
}

// TestFailoverKillPrimaryUnderLoad: kill -9 the primary while four clients
// insert; fail over; every insert acknowledged before the kill is on the
// new primary; a write on the new primary reaches the re-pointed replica;
// the old primary, restarted as a replica, holds no errant transaction,
// rejoins and catches up.
func TestFailoverKillPrimaryUnderLoad(t *testing.T) {
	old, replicas := topo(t)
	tbl := table(t, old)
	db := appDB(t, old)

	var (
		mu     sync.Mutex
		acked  []int64
		failed []int64
		wg     sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); ; i++ {
				id := int64(w)*1_000_000 + i
				err := insert(db, tbl, id, 10*time.Second)
				mu.Lock()
				if err == nil {
					acked = append(acked, id)
				} else {
					failed = append(failed, id)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	t0 := time.Now()
	eventually(t, 10*time.Second, "300 acknowledged inserts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 300
	})
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	wg.Wait()
	mu.Lock()
	t.Logf("killed %s after %v: %d inserts acknowledged (%.0f/s), %d failed", old.Name, killed.Sub(t0).Round(time.Millisecond),
		len(acked), float64(len(acked))/killed.Sub(t0).Seconds(), len(failed))
	mu.Unlock()

	primary, others, f := failover(t, old, replicas)
	if err := insert(appDB(t, primary), tbl, 99_000_000, 10*time.Second); err != nil {
		t.Fatalf("first write on the new primary: %v", err)
	}
	t.Logf("kill to %s promoted: %v; kill to its first acknowledged write: %v (no failure detection in this figure: the test knows)",
		primary.Name, f.promotedAt.Sub(killed).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))

	got := ids(t, primary, tbl)
	lost := 0
	for _, id := range acked {
		if !got[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged inserts are missing on the new primary %s", lost, len(acked), primary.Name)
	}
	present := 0
	for _, id := range failed {
		if got[id] {
			present++
		}
	}
	t.Logf("new primary %s: all %d acknowledged inserts present; %d of the %d failed ones committed anyway (acknowledgement lost with the primary)",
		primary.Name, len(acked)-lost, present, len(failed))
	caughtUp(t, primary, others...)
	for _, r := range others {
		if !ids(t, r, tbl)[99_000_000] {
			t.Errorf("%s: the new primary's write is missing", r.Name)
		}
	}

	t1 := time.Now()
	if err := old.StartAs(ctxTimeout(t, time.Minute), localdb.Replica); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s restarted as a replica (crash recovery) in %v", old.Name, time.Since(t1).Round(time.Millisecond))
	rejoin(t, old, primary, tbl)
	t.Logf("%s rejoined as a replica of %s and caught up, %v after its restart", old.Name, primary.Name, time.Since(t1).Round(time.Millisecond))
}

// TestInDoubtTruncatedOnRejoin: a commit waiting for an acknowledgement
// when the primary dies is in the primary's binlog and on no replica. The
// old primary, restarted with init_rpl_role=SLAVE, rolls it back and cuts
// it from its binlog, so it is not errant and the server can rejoin;
// restarted as a primary it would have committed it.
func TestInDoubtTruncatedOnRejoin(t *testing.T) {
	old, replicas := topo(t)
	tbl := table(t, old)
	db := appDB(t, old)
	if err := insert(db, tbl, 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, old, replicas...)
	for _, r := range replicas {
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- insert(db, tbl, 2, time.Minute) }()
	eventually(t, 5*time.Second, "a commit waiting for an acknowledgement", func() bool {
		return inspect(t, old).SemiSync.WaitSessions > 0
	})
	inDoubt := inspect(t, old).BinlogPos
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the insert waiting for an acknowledgement succeeded")
	}
	for _, r := range replicas {
		if err := r.Start(ctxTimeout(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	primary, _, _ := failover(t, old, replicas)
	if ids(t, primary, tbl)[2] {
		t.Error("the never-acknowledged insert reached the new primary")
	}
	if err := insert(appDB(t, primary), tbl, 3, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := old.StartAs(ctxTimeout(t, time.Minute), localdb.Replica); err != nil {
		t.Fatal(err)
	}
	after := inspect(t, old).BinlogPos
	a, _ := after.Seq(0)
	b, _ := inDoubt.Seq(0)
	t.Logf("%s binlog: %s with the insert waiting, %s after restarting as a replica", old.Name, inDoubt, after)
	if a != b-1 {
		t.Errorf("%s binlog after restart: %s, want the in-doubt %s truncated", old.Name, after, inDoubt)
	}
	rejoin(t, old, primary, tbl)
	if got := ids(t, old, tbl); !got[1] || got[2] || !got[3] {
		t.Errorf("rows on %s after rejoining: %v, want 1 and 3", old.Name, got)
	}
}

// TestErrantRefusesRejoin: a write on a replica (root ignores read_only)
// is an errant transaction. ErrantGTIDs finds it; once the primary writes
// the same sequence number, the replica's applier stops (strict mode) and
// MostAdvanced will not promote it; Rejoin refuses it; rebuilt, it rejoins
// and catches up without the errant row.
func TestErrantRefusesRejoin(t *testing.T) {
	p, rs := topo(t)
	tbl := table(t, p)
	caughtUp(t, p, rs...)
	bad, good := rs[0], rs[1]
	if _, err := rootDB(t, bad).Exec("INSERT INTO " + tbl + " (id) VALUES (666)"); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 30*time.Second)
	errant, err := replication.ErrantGTIDs(ctx, bad.RootDSN(), p.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	if len(errant) != 1 || errant[0].Server != uint32(bad.ServerID) {
		t.Fatalf("errant GTIDs of %s: got %s, want one of server %d", bad.Name, errant, bad.ServerID)
	}
	t.Logf("errant on %s: %s", bad.Name, errant)

	if err := insert(appDB(t, p), tbl, 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, bad.Name+" applier stopped on the conflict", func() bool {
		return inspect(t, bad).Replica.LastSQLErrno != 0
	})
	st := inspect(t, bad)
	t.Logf("%s applier: error %d: %s", bad.Name, st.Replica.LastSQLErrno, st.Replica.LastSQLError)
	cands := []replication.Candidate{{Name: bad.Name, Status: st}, {Name: good.Name, Status: inspect(t, good)}}
	if c, err := replication.MostAdvanced(cands, replication.Policy{}); err != nil || c.Name != good.Name {
		t.Errorf("MostAdvanced: got %q, %v, want %s", c.Name, err, good.Name)
	}
	if _, err := replication.MostAdvanced(cands[:1], replication.Policy{}); !errors.Is(err, replication.ErrNoSafeReplica) {
		t.Errorf("MostAdvanced of %s alone: got %v, want ErrNoSafeReplica", bad.Name, err)
	}

	err = replication.Rejoin(ctx, bad.RootDSN(), p.RootDSN(), set.Source(p))
	var ee *replication.ErrantError
	if !errors.As(err, &ee) || !errors.Is(err, replication.ErrErrantGTIDs) || ee.Errant.String() != errant.String() {
		t.Fatalf("Rejoin of %s: got %v, want an *ErrantError with %s", bad.Name, err, errant)
	}
	t0 := time.Now()
	if err := bad.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if err := replication.Rejoin(ctx, bad.RootDSN(), p.RootDSN(), set.Source(p)); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, p, bad)
	t.Logf("%s rebuilt and caught up in %v", bad.Name, time.Since(t0).Round(time.Millisecond))
	if got := ids(t, bad, tbl); got[666] || !got[1] {
		t.Errorf("rows on rebuilt %s: %v, want 1 and not the errant 666", bad.Name, got)
	}
}
