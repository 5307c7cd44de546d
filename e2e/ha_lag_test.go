package e2e

import (
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
)

// TestEventualReadsRespectLagBound: a read marked non-real-time
// (?consistency=eventual) is served by a replica and may be stale, but
// never older than the lag bound. One replica's applier is stopped right
// before an order is paid: reads may show the order unpaid (from that
// replica) only until the bound has passed since the pay; then that
// replica is no longer used. With both appliers stopped, eventual reads
// fall back to the primary once the bound has passed. Real-time reads
// always see the pay.
func TestEventualReadsRespectLagBound(t *testing.T) {
	const bound = time.Second
	c := startHA(t, haOptions{maxLag: bound})
	replicas := c.storage().Replicas

	type read struct {
		after     time.Duration // from the pay to the read's start
		stale     bool
		replica   bool
		staleness time.Duration
	}
	// phase stops the appliers of the given replicas, pays a new order and
	// reads it eventually for the bound and a half.
	phase := func(name string, stop []dsn.DSN) []read {
		t.Helper()
		r := c.createOn(c.unit, "lag")
		no := r.str("order_no")
		waitFor(t, 5*time.Second, "an eventual read from a replica", func() bool {
			r := c.api.call("GET", "/v3/orders/"+no+"?consistency=eventual", nil)
			return r.status == 200 && r.str("read_from") == "replica"
		})
		for _, d := range stop {
			rootExec(t, c.instance(d), "STOP SLAVE SQL_THREAD")
		}
		paidAt := time.Now()
		want(t, "pay", c.api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "p-" + no}), 200, "")
		var reads []read
		for time.Since(paidAt) < bound*3/2 {
			start := time.Now()
			r := c.api.call("GET", "/v3/orders/"+no+"?consistency=eventual", nil)
			want(t, "eventual read", r, 200, "")
			ms, _ := r.body["staleness_ms"].(float64)
			reads = append(reads, read{after: start.Sub(paidAt), stale: r.str("trade_state") != string(tradeunit.StateSuccess),
				replica: r.str("read_from") == "replica", staleness: time.Duration(ms * float64(time.Millisecond))})
			if degraded, _ := r.body["degraded"].(bool); degraded {
				t.Errorf("%s: an eventual read with the primary up was marked degraded: %v", name, r.body)
			}
			time.Sleep(5 * time.Millisecond) // reads paced through the bound and past it
		}
		rt := c.api.call("GET", "/v3/orders/"+no, nil)
		if rt.str("trade_state") != string(tradeunit.StateSuccess) || rt.str("read_from") != "" {
			t.Errorf("%s: real-time read after the pay: got %v, want SUCCESS from the primary", name, rt.body)
		}
		for _, d := range stop {
			rootExec(t, c.instance(d), "START SLAVE SQL_THREAD")
		}

		var stale, fromReplica, late int
		var oldest, maxStaleness time.Duration
		for _, rd := range reads {
			if rd.replica {
				fromReplica++
				maxStaleness = max(maxStaleness, rd.staleness)
			}
			if rd.stale {
				stale++
				oldest = max(oldest, rd.after)
				if rd.after >= bound {
					late++
				}
			}
			if rd.replica && rd.staleness > bound { // staleness_ms is rounded up
				t.Errorf("%s: a replica read reported staleness %v, over the bound %v", name, rd.staleness, bound)
			}
		}
		t.Logf("%s: %d eventual reads in %v after the pay: %d by a replica (max reported staleness %v), %d stale, the latest %v after the pay (bound %v)",
			name, len(reads), bound*3/2, fromReplica, maxStaleness.Round(time.Millisecond), stale, oldest.Round(time.Millisecond), bound)
		if late > 0 {
			t.Errorf("%s: %d eventual reads older than the bound %v (the latest %v after the pay)", name, late, bound, oldest)
		}
		return reads
	}

	// One replica behind: stale reads may come from it, within the bound;
	// then the other replica (or the primary) serves.
	reads := phase("one applier stopped", replicas[:1])
	if last := reads[len(reads)-1]; last.stale {
		t.Errorf("one applier stopped, after the bound: got %+v, want a fresh read", last)
	}
	// Both behind: past the bound, the primary serves.
	reads = phase("both appliers stopped", replicas)
	if last := reads[len(reads)-1]; last.stale || last.replica {
		t.Errorf("both appliers stopped, after the bound: got %+v, want fresh reads from the primary", last)
	}
}
