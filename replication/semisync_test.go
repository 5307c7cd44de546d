package replication_test

import (
	"testing"
	"time"

	"tradeunit/replication"
)

// TestReplicates: a write on the primary appears on both replicas, and
// Inspect tells each server's role and position.
func TestReplicates(t *testing.T) {
	p, rs := topo(t)
	tbl := table(t, p)
	if err := insert(appDB(t, p), tbl, 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, p, rs...)
	for _, r := range rs {
		if !ids(t, r, tbl)[1] {
			t.Errorf("%s: row 1 missing", r.Name)
		}
	}

	ps := inspect(t, p)
	if ps.Role() != replication.RolePrimary || ps.ReadOnly || !ps.Acknowledged() || ps.SemiSync.Clients != 2 {
		t.Errorf("primary %s: got role %s, read_only %v, acknowledged %v, %d clients; want a writable primary with 2 acknowledging replicas",
			p.Name, ps.Role(), ps.ReadOnly, ps.Acknowledged(), ps.SemiSync.Clients)
	}
	if ps.SemiSync.WaitPoint != "AFTER_SYNC" || ps.SemiSync.Timeout != 24*time.Hour || !ps.SemiSync.WaitNoSlave {
		t.Errorf("primary %s: semi-sync settings %+v, want AFTER_SYNC, 24h, wait_no_slave", p.Name, ps.SemiSync)
	}
	if len(ps.BinlogPos) == 0 || ps.Replica != nil {
		t.Errorf("primary %s: binlog pos %q, replica status %+v", p.Name, ps.BinlogPos, ps.Replica)
	}
	for _, r := range rs {
		st := inspect(t, r)
		if st.Role() != replication.RoleReplica || !st.ReadOnly || st.SemiSync.MasterEnabled || !st.SemiSync.SlaveEnabled {
			t.Errorf("replica %s: got role %s, read_only %v, semi-sync %+v", r.Name, st.Role(), st.ReadOnly, st.SemiSync)
		}
		rep := st.Replica
		if !rep.Receiving() || !rep.SQLRunning || rep.SourcePort != p.Port || rep.SourceHost != "127.0.0.1" {
			t.Errorf("replica %s: got %+v, want it receiving and applying from port %d", r.Name, rep, p.Port)
		}
		if !rep.AppliedPos.Includes(ps.BinlogPos) || !rep.ReceivedPos.Includes(ps.BinlogPos) {
			t.Errorf("replica %s: received %s, applied %s, want both to include the primary's %s",
				r.Name, rep.ReceivedPos, rep.AppliedPos, ps.BinlogPos)
		}
		t.Logf("%s: replica of %s, received %s, applied %s, Seconds_Behind_Master %v",
			r.Name, p.Name, rep.ReceivedPos, rep.AppliedPos, deref(rep.SecondsBehindMaster))
	}
}

// TestSemiSyncOneReplicaDown: with one replica stopped, a commit is
// acknowledged by the other and returns at once.
func TestSemiSyncOneReplicaDown(t *testing.T) {
	p, rs := topo(t)
	tbl := table(t, p)
	db := appDB(t, p)
	before := inspect(t, p).SemiSync
	if err := rs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := insert(db, tbl, 1, 5*time.Second); err != nil {
		t.Fatalf("commit with one replica down: %v", err)
	}
	t.Logf("commit with %s stopped: %v", rs[0].Name, time.Since(t0).Round(time.Microsecond))
	after := inspect(t, p)
	if !after.Acknowledged() || after.SemiSync.Clients != 1 || after.SemiSync.NoTx != before.NoTx || after.SemiSync.YesTx <= before.YesTx {
		t.Errorf("semi-sync after the commit: %+v (before %+v); want 1 client and one more acknowledged commit, none unacknowledged",
			after.SemiSync, before)
	}
	if err := rs[0].Start(ctxTimeout(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, p, rs...)
	if !ids(t, rs[0], tbl)[1] {
		t.Errorf("%s: the row committed while it was down is missing after restart", rs[0].Name)
	}
}

// TestSemiSyncBlocksWithoutReplicas: with one replica stopped and the
// other paused, a commit waits (no silent fall back to asynchronous
// replication) until a replica acknowledges.
func TestSemiSyncBlocksWithoutReplicas(t *testing.T) {
	p, rs := topo(t)
	tbl := table(t, p)
	db := appDB(t, p)
	before := inspect(t, p).SemiSync
	if err := rs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			rs[1].Resume()
		}
	}()

	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- insert(db, tbl, 1, time.Minute) }()
	select {
	case err := <-done:
		t.Fatalf("commit returned (%v) with no acknowledging replica: semi-sync fell back to asynchronous", err)
	case <-time.After(2 * time.Second):
	}
	st := inspect(t, p)
	t.Logf("after 2s without a replica: Rpl_semi_sync_master_status %v, clients %d (the paused one is still connected), wait sessions %d, longest wait %v",
		st.SemiSync.MasterOn, st.SemiSync.Clients, st.SemiSync.WaitSessions, st.SemiSync.LongestWait)
	if !st.SemiSync.MasterOn || st.SemiSync.WaitSessions < 1 || st.SemiSync.NoTx != before.NoTx || st.SemiSync.LongestWait < 1500*time.Millisecond {
		t.Errorf("semi-sync while blocked: %+v (before %+v); want status ON, a session waiting 1.5s+, no unacknowledged commit", st.SemiSync, before)
	}

	if err := rs[1].Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	tr := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("commit after the replica resumed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("commit still waiting 10s after a replica resumed")
	}
	t.Logf("commit blocked %v in all, returned %v after %s resumed", time.Since(t0).Round(time.Millisecond),
		time.Since(tr).Round(time.Millisecond), rs[1].Name)
	if st := inspect(t, p).SemiSync; st.NoTx != before.NoTx || !st.MasterOn {
		t.Errorf("semi-sync after: %+v, want still ON and no unacknowledged commit", st)
	}
	if err := rs[0].Start(ctxTimeout(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, p, rs...)
}

func deref(p *int) any {
	if p == nil {
		return "NULL"
	}
	return *p
}
