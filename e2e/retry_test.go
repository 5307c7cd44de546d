package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/rpc"
	"tradeunit/selection"
	"tradeunit/store/sqlstore"
)

// TestOrderRetry kills one unit's logic services under create load: every
// create still succeeds on another unit, calls for the dead unit's orders get
// a clear 503 while all other orders work, and once the unit is back all its
// orders are there.
func TestOrderRetry(t *testing.T) {
	c := startCluster(t, options{units: 3, replicas: 2})
	api := newClient(t, c, 0)
	const dead tradeunit.UnitID = 2

	// Orders made before the failure, on every unit.
	byUnit := map[tradeunit.UnitID][]string{}
	for i := 0; len(byUnit[dead]) < 5 || len(byUnit[1]) < 5 || len(byUnit[3]) < 5; i++ {
		r := api.call("POST", "/v3/orders", createBody(uniq(fmt.Sprintf("before-%d", i)), 100))
		want(t, "create before", r, 200, "")
		byUnit[unitOf(r)] = append(byUnit[unitOf(r)], r.str("order_no"))
	}

	// Create load across the failure.
	var (
		stop                   atomic.Bool
		killed                 atomic.Bool
		mu                     sync.Mutex
		acked                  = map[string]tradeunit.UnitID{}
		failures, afterKillOn2 int
		wg                     sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				startedAfterKill := killed.Load()
				r, err := api.try("POST", "/v3/orders", createBody(fmt.Sprintf("load-%d-%d-%d", w, i, time.Now().UnixNano()%1e9), 100))
				mu.Lock()
				if err != nil || r.status != 200 {
					failures++
					t.Errorf("create during failure: %d %v", r.status, r.body)
				} else {
					acked[r.str("order_no")] = unitOf(r)
					if startedAfterKill && unitOf(r) == dead {
						afterKillOn2++
					}
				}
				mu.Unlock()
			}
		}()
	}
	waitFor(t, 10*time.Second, "creates acknowledged before the failure", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20
	})
	for _, r := range c.Unit(dead).Replicas {
		if err := r.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	killed.Store(true)
	time.Sleep(1500 * time.Millisecond) // the load runs across the failure; every create in it is checked
	stop.Store(true)
	wg.Wait()
	t.Logf("%d creates acknowledged across the failure, %d failed", len(acked), failures)
	if failures > 0 || afterKillOn2 > 0 || len(acked) < 50 {
		t.Fatalf("got %d failed creates and %d created on the dead unit (of %d), want 0 and 0 of at least 50",
			failures, afterKillOn2, len(acked))
	}

	// The dead unit's orders: a clear 503. Everyone else's: served.
	for _, no := range byUnit[dead] {
		want(t, "get order of dead unit", api.call("GET", "/v3/orders/"+no, nil), 503, "UNIT_UNAVAILABLE")
		want(t, "pay order of dead unit", api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "p"}), 503, "UNIT_UNAVAILABLE")
	}
	for _, u := range []tradeunit.UnitID{1, 3} {
		for _, no := range byUnit[u] {
			want(t, "pay order of live unit", api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "p-" + no}), 200, "")
		}
	}

	// The unit returns on its addresses: all its orders are there.
	for _, r := range c.Unit(dead).Replicas {
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "unit 2 serving again", func() bool {
		return api.call("GET", "/v3/orders/"+byUnit[dead][0], nil).status == 200
	})
	for no, u := range acked {
		byUnit[u] = append(byUnit[u], no)
	}
	for u, nos := range byUnit {
		for _, no := range nos {
			r := api.call("GET", "/v3/orders/"+no, nil)
			want(t, fmt.Sprintf("get order of unit %d after recovery", u), r, 200, "")
		}
	}
	want(t, "pay on the recovered unit", api.call("POST", "/v3/orders/"+byUnit[dead][0]+"/pay", map[string]any{"payment_id": "p"}), 200, "")
}

// TestUnknownOutcomeIsRecorded pauses a unit so that a create sent to it times
// out with an unknown outcome: the create succeeds on another unit and the
// order names the paused unit in abandoned_units. When the paused unit
// resumes, it finds the call canceled and commits nothing, or, had it been
// further along, commits an orphan: either way a query by out_trade_no
// returns the winner, and any orphan is on the unit the winner names.
func TestUnknownOutcomeIsRecorded(t *testing.T) {
	c := startCluster(t, options{units: 3, replicas: 2, unitTimeout: 300 * time.Millisecond})
	api := newClient(t, c, 0)
	mchid := c.Credentials.Merchants[0].Mchid
	const paused tradeunit.UnitID = 1

	// An out_trade_no whose first choice is the unit we pause.
	cands := []selection.Candidate{{Unit: 1, Weight: 1}, {Unit: 2, Weight: 1}, {Unit: 3, Weight: 1}}
	var out string
	for i := 0; ; i++ {
		out = fmt.Sprintf("unknown-%d-%d", time.Now().UnixNano()%1e9, i)
		if selection.Rank(nil, mchid+"/"+out, cands)[0] == paused {
			break
		}
	}
	for _, r := range c.Unit(paused).Replicas {
		if err := r.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	r := api.call("POST", "/v3/orders", createBody(out, 100))
	for _, rep := range c.Unit(paused).Replicas {
		rep.Resume()
	}
	want(t, "create while the first unit hangs", r, 200, "")
	abandoned, _ := r.body["abandoned_units"].([]any)
	if unitOf(r) == paused || len(abandoned) != 1 || abandoned[0] != float64(paused) {
		t.Fatalf("order %v: want it on another unit with abandoned_units [%d]", r.body, paused)
	}

	rc, err := rpc.Dial(c.Unit(paused).Replicas[0].Addr(), proxyDial(t, c)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	waitFor(t, 5*time.Second, "paused unit serving again", func() bool { return rc.Check(context.Background()) == nil })
	orphan, err := rc.OrderByOutTradeNo(context.Background(), mchid, out)
	switch {
	case err == nil:
		t.Logf("the paused unit committed an orphan: %s", orphan.OrderNo)
		if orphan.State != tradeunit.StateNotPay || orphan.OrderNo == r.str("order_no") {
			t.Fatalf("orphan %+v", orphan)
		}
	case tradeunit.IsCode(err, tradeunit.CodeNotFound):
		// The paused unit dropped the canceled create. Commit the orphan it
		// could have left had it been further along, straight into its
		// storage, so that the lookup below always meets one.
		t.Log("the paused unit dropped the canceled create; planting the orphan it could have committed")
		plantOrphan(t, c.Unit(paused).DSN, mchid, out, paused)
	default:
		t.Fatal(err)
	}
	got := api.call("GET", "/v3/orders/out-trade-no/"+out, nil)
	if got.str("order_no") != r.str("order_no") {
		t.Fatalf("query by out_trade_no returned %s, want the winner %s", got.str("order_no"), r.str("order_no"))
	}
}

// TestSequenceAcrossReplicas: two replicas of one unit creating at once,
// with tiny sequence blocks so that they allocate often, and one of them
// restarted halfway, never produce the same order number.
func TestSequenceAcrossReplicas(t *testing.T) {
	c := startCluster(t, options{units: 1, replicas: 2, sequenceBlock: 3})
	reps := c.Unit(1).Replicas
	clients := make([]*rpc.Client, len(reps))
	dial := proxyDial(t, c)
	for i, r := range reps {
		cl, err := rpc.Dial(r.Addr(), dial...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients[i] = cl
	}
	mchid := c.Credentials.Merchants[0].Mchid
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	create := func(w, i int) {
		for attempt := 0; ; attempt++ {
			o, err := clients[(w+attempt)%2].CreateOrder(context.Background(), tradeunit.CreateOrderRequest{
				Mchid: mchid, OutTradeNo: fmt.Sprintf("seq-%d-%d", w, i), Description: "seq",
				Amount: tradeunit.Amount{Total: 1, Currency: "CNY"},
			})
			if err != nil && !tradeunit.Answered(err) && attempt < 20 {
				time.Sleep(50 * time.Millisecond) // the other replica restarting
				continue
			}
			if err != nil {
				t.Errorf("create: %v", err)
				return
			}
			mu.Lock()
			if seen[o.OrderNo] {
				t.Errorf("order number %s issued twice", o.OrderNo)
			}
			seen[o.OrderNo] = true
			mu.Unlock()
			return
		}
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				create(w, i)
				if w == 0 && i == 30 {
					reps[1].Stop()
					reps[1].Start(context.Background())
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 8*60 {
		t.Fatalf("got %d distinct order numbers, want %d", len(seen), 8*60)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
	}
}

// plantOrphan commits, in a unit's storage, the order a create with an
// unknown outcome may leave behind.
func plantOrphan(t *testing.T, d dsn.DSN, mchid, outTradeNo string, unit tradeunit.UnitID) {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	no, err := orderno.New(unit, now, orderno.MaxSeq)
	if err != nil {
		t.Fatal(err)
	}
	if _, created, err := store.CreateOrder(context.Background(), &tradeunit.Order{OrderNo: no.String(), Mchid: mchid,
		OutTradeNo: outTradeNo, Description: "e2e order", Amount: tradeunit.Amount{Total: 100, Currency: "CNY"},
		CreateTime: now}); err != nil || !created {
		t.Fatalf("plant orphan: created %v, %v", created, err)
	}
}
