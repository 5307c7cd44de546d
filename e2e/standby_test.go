package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

// TestStandbyTakesAFailedPartitionsNewOrders: the key partition has one
// unit (2) and one standby (3). While unit 2 lives the standby takes
// nothing; once unit 2's replicas are killed the key merchant's creates go
// on, on the standby, within a bound, and never land in normal (the
// partition refuses rather than spills); restarted, unit 2 takes the new
// key creates again. Every acknowledged order reads back.
func TestStandbyTakesAFailedPartitionsNewOrders(t *testing.T) {
	const unit, standby tradeunit.UnitID = 2, 3
	// Probes every 100 ms, but with time to answer on a loaded machine: a
	// unit that is slow for a moment is ejected, rightly, and the standby
	// takes its orders, which this test would take for a fault. The
	// killed unit's probes fail at once (connection refused) all the same.
	checker := checkerEvery(100 * time.Millisecond)
	checker.Health.ProbeTimeout = time.Second
	c := startCluster(t, options{units: 3, replicas: 1, health: checker, routes: func(tbl *routing.Table) {
		tbl.Units[1].Partition = routing.KeyPartition
		tbl.Units[2].Partition, tbl.Units[2].Standby = routing.KeyPartition, true
		tbl.Merchants = map[string]string{"1900000002": routing.KeyPartition}
	}})
	key := newClient(t, c, 1)
	l := &load{t: t, api: key}
	var all []created

	out := runAdmin(t, c, "units", "--routes", c.RoutesPath, "--health", "", "--json")
	if !strings.Contains(out, `"standby": true`) {
		t.Fatalf("admin units --json shows no standby:\n%s", out)
	}

	inUse := func() float64 {
		return metric(scrape(t, c.ProxyURL+"/metrics"), "tradeunit_proxy_unit_standby_in_use", "unit", standby.String())
	}
	rs := createMany(t, key, 200, 8, "before")
	all = append(all, rs...)
	if counts := perUnit(rs); len(failed(rs)) > 0 || counts[unit] != 200 {
		t.Fatalf("with unit %d alive: %d failed, per unit %v; want all 200 on it, none on the standby", unit, len(failed(rs)), counts)
	}
	if got := inUse(); got != 0 {
		t.Fatalf("tradeunit_proxy_unit_standby_in_use of the standby: got %v, want 0 while unit %d lives", got, unit)
	}

	for _, r := range c.Unit(unit).Replicas {
		if err := r.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	// Until the proxy holds unit 2 down, a create may fail (the partition
	// refuses); none may land anywhere but the standby.
	const bound = 10 * time.Second
	waitFor(t, bound, "a key create on the standby after the kill", func() bool {
		r := l.one(uniq("failing"))
		if r.status == 200 && r.unit != standby {
			t.Fatalf("with unit %d dead a key create landed on unit %d, want only the standby %d", unit, r.unit, standby)
		}
		return r.status == 200
	})
	t.Logf("first key create on the standby %v after the kill", time.Since(killed).Round(time.Millisecond))
	// The proxy sets its gauges just after it puts a plan in force.
	waitFor(t, 2*time.Second, "tradeunit_proxy_unit_standby_in_use 1 while the standby takes the partition's orders",
		func() bool { return inUse() == 1 })

	rs = createMany(t, key, 200, 8, "standby")
	all = append(all, rs...)
	counts := perUnit(rs)
	t.Logf("with unit %d dead: per unit %v, %d failed", unit, counts, len(failed(rs)))
	if counts[standby] < 190 || counts[standby] != 200-len(failed(rs)) {
		t.Fatalf("with unit %d dead: per unit %v, %d failed; want (nearly) all 200 on the standby, none elsewhere", unit, counts, len(failed(rs)))
	}

	for _, r := range c.Unit(unit).Replicas {
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	restarted := time.Now()
	waitFor(t, 20*time.Second, fmt.Sprintf("a key create on the restarted unit %d", unit), func() bool {
		r := l.one(uniq("back"))
		return r.status == 200 && r.unit == unit
	})
	t.Logf("first key create back on unit %d %v after the restart", unit, time.Since(restarted).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "tradeunit_proxy_unit_standby_in_use 0 once the unit is back", func() bool { return inUse() == 0 })
	rs = createMany(t, key, 200, 8, "after")
	all = append(all, rs...)
	// A freshly restarted unit on a loaded machine may miss a probe and be
	// ejected for a moment; its partition's orders then go to the standby,
	// as they should. Nearly all must be back on the unit, none elsewhere.
	if counts := perUnit(rs); len(failed(rs)) > 0 || counts[unit] < 180 || counts[unit]+counts[standby] != 200 {
		t.Fatalf("with unit %d back: %d failed, per unit %v; want (nearly) all 200 on it again, the rest on the standby", unit, len(failed(rs)), counts)
	}

	all = append(all, l.snapshot()...)
	for _, r := range all {
		if r.status == 200 && r.unit != unit && r.unit != standby {
			t.Fatalf("key create %s landed on unit %d, outside the key partition", r.outTradeNo, r.unit)
		}
	}
	checkAcknowledged(t, key, all)
}
