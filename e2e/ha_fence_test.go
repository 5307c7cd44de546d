package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/cluster"
	"tradeunit/daemon/unitd"
	"tradeunit/dsn"
	"tradeunit/replication"
	"tradeunit/replication/localdb"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// TestFailoverFencesLivePrimary fails over a unit whose primary is alive
// and written to: through the proxy, and by a stale logic service that
// still writes to the old primary directly (started with --db, so it does
// not follow the routing table). Reads of read_only on the three servers,
// polled throughout, never show two writable ones; after the failover the
// stale service's writes and the application user's fail on the old
// primary (fenced), also once it is restarted; every order acknowledged
// through the proxy is there; the old primary rejoins as a replica.
func TestFailoverFencesLivePrimary(t *testing.T) {
	c := startHA(t, haOptions{sqliteUnits: 1})
	ctx := context.Background()
	old := c.storage().Primary
	oldIn := c.instance(old)

	staleCfg := unitd.DefaultConfig()
	staleCfg.Service.Unit, staleCfg.DB, staleCfg.Secrets = c.unit, old, c.set.SecretsPath()
	stale := cluster.NewReplica(binary, c.dir, "stale", staleCfg)
	if err := stale.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stale.Stop()
	sc, err := rpc.Dial(stale.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	staleCreate := func(out string) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := sc.CreateOrder(cctx, tradeunit.CreateOrderRequest{Mchid: c.mchid, OutTradeNo: out, Description: "stale",
			Amount: tradeunit.Amount{Total: 1}})
		return err
	}
	if err := staleCreate(uniq("stale-before")); err != nil {
		t.Fatalf("stale logic service before the failover: %v", err)
	}

	watch := watchPrimaries(t, c.set)
	load := startHALoad(c, 4)
	load.waitChanges(t, 20*time.Second, 10, c.unit, time.Time{}, "on the live primary")
	res, err := c.admin.Failover(ctx, c.unit, admin.DefaultFailoverOptions())
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	failedOver := time.Now()
	for _, s := range res.Steps {
		t.Logf("  failover step %-14s %8v  %s", s.Name, s.Took.Round(100*time.Microsecond), s.Detail)
	}
	if !res.OldFenced {
		t.Errorf("the live old primary was not fenced: %+v", res)
	}
	t.Logf("planned failover of unit %d: new primary %s after %v, unit taking changes after %v",
		c.unit, c.instance(res.NewPrimary).Name, res.Remapped.Round(time.Millisecond), res.Took.Round(time.Millisecond))

	err = staleCreate(uniq("stale-after"))
	t.Logf("stale logic service writing to the fenced old primary: %v", err)
	if err == nil {
		t.Error("a create through a logic service still on the old primary succeeded after the failover")
	}
	if err := appWrite(oldIn, c.db); !isReadOnly(err) {
		t.Errorf("application write to the fenced old primary: got %v, want a read-only refusal (1290)", err)
	}
	load.waitChanges(t, 20*time.Second, 10, c.unit, failedOver, "after the failover")
	orders, _, errs := load.halt()
	for _, e := range errs {
		t.Error(e)
	}
	settlePaysAndVerify(t, c, orders)

	// Restarted (as it always starts: read-only), it still refuses the
	// application; then it rejoins.
	if err := oldIn.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := oldIn.StartAs(ctx, localdb.Replica); err != nil {
		t.Fatal(err)
	}
	if err := appWrite(oldIn, c.db); !isReadOnly(err) {
		t.Errorf("application write to the restarted old primary: got %v, want a read-only refusal (1290)", err)
	}
	if err := staleCreate(uniq("stale-restarted")); err == nil {
		t.Error("a create through a logic service still on the restarted old primary succeeded")
	}
	// A commit the fence killed while it waited for its acknowledgement
	// stays in the old primary's binlog (a clean restart does not truncate
	// it): then it must be rebuilt before it rejoins.
	_, err = c.admin.Rejoin(ctx, c.unit, "", admin.DefaultFailoverOptions())
	if errors.Is(err, replication.ErrErrantGTIDs) {
		t.Logf("old primary holds errant transactions (%v): rebuilt, then rejoined", err)
		if err := oldIn.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = c.admin.Rejoin(ctx, c.unit, "", admin.DefaultFailoverOptions())
	}
	if err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	if st := c.storage(); !slices.Contains(st.Replicas, old) || len(st.Fenced) != 0 {
		t.Errorf("storage after rejoin: got %+v, want the old primary among the replicas", st)
	}
	watch.check(t)
}

// TestFailoverRefusedWhenNoReplicaIsSafe: with its replicas down, a unit
// cannot fail over (an unreachable replica may hold acknowledged orders
// no other has): the failover is refused with a clear error naming each
// replica, and nothing changes: the routing table keeps its revision and
// storage, and the primary stays writable.
func TestFailoverRefusedWhenNoReplicaIsSafe(t *testing.T) {
	dir := t.TempDir()
	set := startSet(t, filepath.Join(dir, "mariadb"))
	const db = "tradeunit_u1"
	in := set.Instances
	storage := routing.Storage{Primary: storageDSN(in[0], db), Replicas: []dsn.DSN{storageDSN(in[1], db), storageDSN(in[2], db)}}
	top := &routing.Topology{Revision: 1}
	top.Set(1, storage)
	topology, err := routing.NewMemoryTopology(top)
	if err != nil {
		t.Fatal(err)
	}
	a := &admin.Admin{Topology: topology, Passwords: set.Passwords(), Who: "e2e"}
	before := topology.Current()

	for _, tt := range []struct {
		name string
		down []*localdb.Instance
	}{
		{"every replica down", in[1:]},
		{"one replica down", in[2:]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range tt.down {
				if err := r.Kill(); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				for _, r := range tt.down {
					if err := r.Start(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}()
			t0 := time.Now()
			res, err := a.Failover(context.Background(), 1, admin.DefaultFailoverOptions())
			t.Logf("refused in %v: %v", time.Since(t0).Round(time.Millisecond), err)
			if err == nil || !errors.Is(err, replication.ErrNoSafeReplica) || !tradeunit.IsCode(err, tradeunit.CodeInvalidRequest) ||
				!strings.Contains(err.Error(), "nothing changed") || !strings.Contains(err.Error(), tt.down[0].Addr()) {
				t.Fatalf("failover: got %+v, %v; want a refusal (INVALID_REQUEST, no safe replica) naming %s", res, err, tt.down[0].Addr())
			}
			after := topology.Current()
			u, _ := after.Unit(1)
			if after.Revision != before.Revision || u.Primary != storage.Primary ||
				!slices.Equal(u.Replicas, storage.Replicas) || len(u.Fenced) != 0 {
				t.Errorf("storage topology after a refused failover: revision %d → %d, storage %+v; want it unchanged",
					before.Revision, after.Revision, u.Storage)
			}
			st, err := replication.Inspect(context.Background(), in[0].RootDSN())
			if err != nil || st.ReadOnly {
				t.Errorf("primary after a refused failover: read_only=%v (%v), want writable", st.ReadOnly, err)
			}
		})
	}
}
