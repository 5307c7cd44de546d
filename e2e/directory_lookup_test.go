package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
)

// TestDirectoryLookupCost measures, from the proxy's own metrics, the calls
// one lookup by a merchant's number makes (tradeunit_proxy_unit_requests_total
// and tradeunit_proxy_directory_requests_total), at 4 units and at 16: by
// out_trade_no and by out_refund_no, exactly one directory shard read and one
// unit read each, whatever the number of units. With one unit down, its
// orders' and refunds' lookups fail (503 UNIT_UNAVAILABLE) at the same cost,
// and every other lookup is still answered. Each cluster ends with checkTold.
func TestDirectoryLookupCost(t *testing.T) {
	// Four times the units is enough to show the cost does not grow with
	// them; 32 took half a minute of CI for the same figure.
	const few, many = 4, 16
	costs := map[int]lookupCost{}
	for _, units := range []int{few, many} {
		t.Run(fmt.Sprintf("units=%d", units), func(t *testing.T) { costs[units] = testLookupCost(t, units) })
	}
	if len(costs) == 2 {
		t.Logf("calls per lookup (shard + unit), by out_trade_no: %v at %d units, %v at %d; by out_refund_no: %v at %d units, %v at %d",
			costs[few].byOut, few, costs[many].byOut, many, costs[few].byRefund, few, costs[many].byRefund, many)
	}
}

// lookupCost is the calls per lookup, directory shard and unit.
type lookupCost struct{ byOut, byRefund callsPer }

type callsPer struct{ shard, unit float64 }

func (c callsPer) String() string { return fmt.Sprintf("%.2f+%.2f", c.shard, c.unit) }

func testLookupCost(t *testing.T, units int) lookupCost {
	c := startCluster(t, options{units: units, replicas: 1, shards: 2})
	l := newTold()
	api := dirClientOf(t, c, c.ProxyURL, 0, l)

	// 4 orders per unit on average; every other one paid and refunded.
	type order struct {
		out, no, orn string
		unit         tradeunit.UnitID
	}
	orders := make([]order, 4*units)
	prefix := uniq("dir-cost")
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(orders)); i = next.Add(1) - 1 {
				o := order{out: fmt.Sprintf("%s-%d", prefix, i)}
				r, _, err := api.createAnswered(createBody(o.out, 1000))
				if err != nil || r.status != 200 {
					t.Errorf("create %s: %v %d %v", o.out, err, r.status, r.body)
					return
				}
				o.no, o.unit = r.str("order_no"), unitOf(r)
				if i%2 == 0 {
					o.orn = o.out + "-r"
					for _, step := range []struct {
						path string
						body any
					}{
						{"/v3/orders/" + o.no + "/pay", map[string]any{"payment_id": "pay-" + o.no}},
						{"/v3/refunds", refundBody(o.no, o.orn, 100)},
					} {
						if r, err := api.do("POST", step.path, step.body); err != nil || r.status != 200 {
							t.Errorf("POST %s: %v %d %v", step.path, err, r.status, r.body)
							return
						}
					}
				}
				orders[i] = o
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	strict := failedUnitCalls(t, c.ProxyURL) == 0

	// lookups looks up every order by out_trade_no, or every refund by
	// out_refund_no, checks each answer with check, and returns the calls
	// per lookup the proxy's metrics counted meanwhile. Nothing else calls
	// through this proxy: every call it counts is a lookup's.
	lookups := func(refunds bool, check func(order, response)) callsPer {
		t.Helper()
		op := "get_by_out_trade_no"
		if refunds {
			op = "get_refund"
		}
		before := scrape(t, c.ProxyURL+"/metrics")
		n := 0
		for _, o := range orders {
			path := "/v3/orders/out-trade-no/" + o.out
			if refunds {
				if o.orn == "" {
					continue
				}
				path = "/v3/refunds/" + o.orn
			}
			check(o, api.must("GET", path, nil))
			n++
		}
		after := scrape(t, c.ProxyURL+"/metrics")
		delta := func(name string, labels ...string) float64 {
			return metric(after, name, labels...) - metric(before, name, labels...)
		}
		unit, unitOp := delta("tradeunit_proxy_unit_requests_total"), delta("tradeunit_proxy_unit_requests_total", "op", op)
		shard, shardGet := delta("tradeunit_proxy_directory_requests_total"), delta("tradeunit_proxy_directory_requests_total", "op", "get")
		if unit != float64(n) || unitOp != float64(n) || shard != float64(n) || shardGet != float64(n) {
			t.Errorf("%d lookups (%s) at %d units: %v unit calls (%v %s), %v shard calls (%v get); want one unit call (%s) and one shard read each",
				n, op, units, unit, unitOp, op, shard, shardGet, op)
		}
		return callsPer{shard: shard / float64(n), unit: unit / float64(n)}
	}
	found := func(o order, r response) {
		if r.status != 200 || r.str("order_no") != o.no || (r.str("refund_id") != "" && r.str("out_refund_no") != o.orn) {
			t.Errorf("lookup of %s (unit %d): got %d %v, want 200 and order %s", o.out, o.unit, r.status, r.body, o.no)
		}
	}
	cost := lookupCost{byOut: lookups(false, found), byRefund: lookups(true, found)}
	t.Logf("%d units: %d orders, calls per lookup (shard + unit) by out_trade_no %v, by out_refund_no %v", units, len(orders), cost.byOut, cost.byRefund)

	// One unit down: the one with the most refunded orders.
	perUnit := map[tradeunit.UnitID]int{}
	var down tradeunit.UnitID
	for _, o := range orders {
		if o.orn != "" {
			if perUnit[o.unit]++; perUnit[o.unit] > perUnit[down] {
				down = o.unit
			}
		}
	}
	for _, r := range c.Unit(down).Replicas {
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	var failed, answered int
	onlyItsOwn := func(o order, r response) {
		if o.unit != down {
			found(o, r)
			answered++
			return
		}
		failed++
		if r.status != 503 || r.code() != "UNIT_UNAVAILABLE" {
			t.Errorf("lookup of %s while its unit %d is down: got %d %v, want 503 UNIT_UNAVAILABLE", o.out, o.unit, r.status, r.body)
		}
	}
	downCost := lookupCost{byOut: lookups(false, onlyItsOwn), byRefund: lookups(true, onlyItsOwn)}
	t.Logf("unit %d down: %d lookups of its orders and refunds got 503, %d others 200; calls per lookup by out_trade_no %v, by out_refund_no %v",
		down, failed, answered, downCost.byOut, downCost.byRefund)
	if failed == 0 || answered == 0 {
		t.Errorf("unit %d down: %d lookups failed, %d answered; want some of each", down, failed, answered)
	}

	// It comes back, and everything told is there.
	for _, r := range c.Unit(down).Replicas {
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var its order
	for _, o := range orders {
		if o.unit == down {
			its = o
		}
	}
	waitFor(t, 15*time.Second, fmt.Sprintf("unit %d serving again", down), func() bool {
		r, err := api.try("GET", "/v3/orders/"+its.no, nil)
		return err == nil && r.status == 200
	})
	v := checkTold(t, c, c.ProxyURL, l)
	requireOnePerKey(t, v, func() (ks []merchantNo) {
		for _, o := range orders {
			ks = append(ks, merchantNo{api.mchid, o.out})
		}
		return ks
	}(), strict)
	return cost
}
