package e2e

import (
	"context"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/cluster"
	"tradeunit/daemon/relayd"
	"tradeunit/rpc"
	"tradeunit/store/sqlstore"
)

// TestRelayFollowsFailover runs a relay of the replicated unit that follows
// the storage topology (tradeunit relay --routes), kills the unit's primary
// under load and fails over: the relay goes on from the cursor the new
// primary holds, and every event of the new primary's outbox (the
// semi-sync-acknowledged ones of the old primary and the new ones) reaches
// the bus.
func TestRelayFollowsFailover(t *testing.T) {
	url := machineNATS(t)
	c := startHA(t, haOptions{sqliteUnits: 1})
	ev := eventsOn(t, url, "")
	cfg := relayd.DefaultConfig()
	cfg.Relay.Unit, cfg.Routes, cfg.Secrets, cfg.Bus = c.unit, c.path, c.set.SecretsPath(), ev.Bus
	cfg.Bus.URL = url
	cfg.Relay.LeaseTTL, cfg.Storage.CheckEvery = time.Second, 100*time.Millisecond
	relay := cluster.NewProcess(binary, c.dir, "relay", func(listen, addrFile string) []string {
		rc := cfg
		rc.Metrics, rc.MetricsAddrFile = listen, addrFile
		return rc.Args()
	})
	if err := relay.Start(context.Background()); err != nil {
		t.Fatalf("start relay: %v", err)
	}
	t.Cleanup(func() { relay.Stop() })
	rec := recordBus(t, ev, url)

	ctx := context.Background()
	load := startHALoad(c, 4)
	load.waitChanges(t, 20*time.Second, 20, c.unit, time.Time{}, "before the kill")
	if err := c.instance(c.storage().Primary).Kill(); err != nil {
		t.Fatal(err)
	}
	rc, err := rpc.Dial(c.logic[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	waitFor(t, 10*time.Second, "unit reporting NOT_SERVING", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return rc.Check(cctx) != nil
	})
	if _, err := c.admin.Failover(ctx, c.unit, admin.DefaultFailoverOptions()); err != nil {
		t.Fatalf("failover: %v", err)
	}
	failedOver := time.Now()
	load.waitChanges(t, 20*time.Second, 20, c.unit, failedOver, "after the failover")
	load.halt()

	store, err := sqlstore.OpenReadOnly(ctx, c.storage().Primary, c.admin.Passwords)
	if err != nil {
		t.Fatalf("open the new primary: %v", err)
	}
	defer store.Close()
	want := outboxIDs(t, map[tradeunit.UnitID]tradeunit.Store{c.unit: store})
	var missing []string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if missing = rec.missing(t, want); len(missing) == 0 {
			break
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of the new primary's %d events never reached the bus, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
	}
	t.Logf("all %d events of the unit's outbox on the bus across the failover", len(want))
}
