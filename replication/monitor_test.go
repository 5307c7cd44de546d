package replication_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"tradeunit/replication"
)

// TestMonitorAsApplicationUser: the application user, without SUPER or
// SLAVE MONITOR, can tell whether the primary takes writes with the
// guarantee (InspectPrimary, Status.Writable) and how far behind a replica
// is (HeartbeatAge). StopReceiving makes a replica stop acknowledging: the
// primary counts one client fewer.
func TestMonitorAsApplicationUser(t *testing.T) {
	p, rs := topo(t)
	ctx := ctxTimeout(t, 30*time.Second)
	st, err := replication.InspectPrimary(ctx, p.AppDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := st.Writable(time.Second); !ok || st.Replica != nil {
		t.Errorf("primary as the application user: writable %v (%s), replica %+v; want writable, no replica status", ok, why, st.Replica)
	}
	st, err = replication.InspectPrimary(ctx, rs[0].AppDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := st.Writable(time.Second); ok {
		t.Errorf("replica as the application user: got writable, want not (%s)", why)
	}

	hb, err := replication.StartHeartbeat(context.Background(), p.AppDSN(""), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Stop()
	eventually(t, 5*time.Second, "heartbeat age known and small", func() bool {
		age, known, err := replication.HeartbeatAge(ctx, rs[0].AppDSN(""))
		return err == nil && known && age < 500*time.Millisecond
	})

	before := inspect(t, p).SemiSync.Clients
	if err := replication.StopReceiving(ctx, rs[0].RootDSN()); err != nil {
		t.Fatal(err)
	}
	defer rootDB(t, rs[0]).Exec("START SLAVE IO_THREAD")
	eventually(t, 5*time.Second, "one acknowledging client fewer", func() bool {
		return inspect(t, p).SemiSync.Clients == before-1
	})
	if err := replication.StopReceiving(ctx, p.RootDSN()); !errors.Is(err, replication.ErrNotReplica) {
		t.Errorf("StopReceiving on the primary: got %v, want ErrNotReplica", err)
	}
	if _, err := rootDB(t, rs[0]).Exec("START SLAVE IO_THREAD"); err != nil {
		t.Fatal(err)
	}
}
