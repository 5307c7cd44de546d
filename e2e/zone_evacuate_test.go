package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"tradeunit/admin"
	"tradeunit/replication"
	"tradeunit/routing"
)

// TestZoneEvacuation: the replicated unit's primary is in zone a, its
// replicas in b and c, and its two logic replicas in a and b. Evacuating
// zone a under create and pay load hands the primary to a replica outside
// it with every order kept, rejoins the old primary as a replica (it holds
// nothing the new one lacks), never has two writable primaries, fails no
// create, and moves the proxy's calls off the logic replica in a; restore
// lets them back.
func TestZoneEvacuation(t *testing.T) {
	c := startHA(t, haOptions{sqliteUnits: 1})
	ctx := context.Background()
	in := c.set.Instances
	if _, err := c.admin.SetUnit(ctx, c.unit, admin.UnitChanges{
		StorageZones: map[string]string{in[0].Addr(): "a", in[1].Addr(): "b", in[2].Addr(): "c"},
		LogicZones:   map[string]string{c.logic[0].Addr(): "a", c.logic[1].Addr(): "b"},
	}); err != nil {
		t.Fatal(err)
	}
	old := c.storage().Primary
	watch := watchPrimaries(t, c.set)
	load := startHALoad(c, 8)
	load.waitChanges(t, 20*time.Second, 20, c.unit, time.Time{}, "before the evacuation")

	plan, err := c.admin.PlanEvacuation("a")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != 1 || plan.Moves[0].Entry != routing.UnitRef(c.unit) || len(plan.Refusals) > 0 {
		t.Fatalf("plan %+v, want one move of unit %d and no refusal", plan, c.unit)
	}
	start := time.Now()
	res, err := c.admin.Evacuate(ctx, "a", admin.EvacuateOptions{Failover: admin.DefaultFailoverOptions()})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(res.Failovers) != 1 || !res.Failovers[0].OldFenced {
		t.Fatalf("evacuation %+v, want one failover of a fenced primary", res)
	}
	f := res.Failovers[0]
	st := c.storage()
	if z := st.Zones[st.Primary.Server()]; z == "a" || st.Primary == old {
		t.Fatalf("primary %s in zone %q after evacuating zone a", st.Primary.Server(), z)
	}
	if !slices.Contains(st.Replicas, old) || len(st.Fenced) != 0 || !slices.Equal(res.Rejoined, []string{old.Server()}) {
		t.Fatalf("storage %+v rejoined %v: want the old primary %s a replica again", st, res.Rejoined, old.Server())
	}
	t.Logf("zone a evacuated in %v: unit %d's primary %s → %s; its writes paused %v (fence → acknowledged)",
		took.Round(time.Millisecond), c.unit, old.Server(), st.Primary.Server(), f.Took.Round(time.Millisecond))

	// The proxy calls the logic replica in zone a no more.
	calls := func() float64 {
		body := scrape(t, c.logic[0].MetricsURL())
		return metric(body, "tradeunit_unit_rpc_requests_total") - metric(body, "tradeunit_unit_rpc_requests_total", "method", "Check")
	}
	load.waitChanges(t, 20*time.Second, 5, c.unit, time.Now(), "after the evacuation")
	before := calls()
	load.waitChanges(t, 20*time.Second, 20, c.unit, time.Now(), "after the evacuation, with zone a's logic replica settled")
	if n := calls() - before; n != 0 {
		t.Errorf("the logic replica in the evacuated zone served %v calls", n)
	}
	if _, _, err := c.admin.RestoreZone(ctx, "a", admin.DefaultFailoverOptions()); err != nil {
		t.Fatal(err)
	}
	before = calls()
	waitFor(t, 20*time.Second, "calls on zone a's logic replica again", func() bool { return calls() > before })

	orders, events, errs := load.halt()
	for _, e := range errs {
		t.Error(e)
	}
	creates := countEvents(events, "create", 0, start, start.Add(took))
	t.Logf("creates during the evacuation: %d of %d succeeded", creates.ok, creates.total)
	if creates.ok != creates.total {
		t.Errorf("creates during the evacuation: %d of %d succeeded, want all", creates.ok, creates.total)
	}
	settlePaysAndVerify(t, c, orders)
	oldIn := c.instance(old)
	waitFor(t, 15*time.Second, "the old primary replicating from the new one", func() bool {
		s, err := replication.Inspect(ctx, oldIn.RootDSN())
		return err == nil && s.Replica != nil && s.Replica.Receiving() && s.Replica.SQLRunning
	})
	watch.check(t)
}
