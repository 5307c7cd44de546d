package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"tradeunit"
)

func mustTime() time.Time { return time.Now() }

// TestMerchantIsolation: a merchant can neither see nor change another's
// orders, and learns nothing about them: 404, not 403.
func TestMerchantIsolation(t *testing.T) {
	c := startCluster(t, options{units: 2, replicas: 1})
	a, b := newClient(t, c, 0), newClient(t, c, 1)
	out := uniq("iso")
	no := a.mustCreate(out, 100)
	want(t, "B gets A's order by number", b.call("GET", "/v3/orders/"+no, nil), 404, "RESOURCE_NOT_EXISTS")
	want(t, "B gets A's order by out_trade_no", b.call("GET", "/v3/orders/out-trade-no/"+out, nil), 404, "RESOURCE_NOT_EXISTS")
	want(t, "B pays A's order", b.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "p"}), 404, "RESOURCE_NOT_EXISTS")
	want(t, "B closes A's order", b.call("POST", "/v3/orders/"+no+"/close", nil), 404, "RESOURCE_NOT_EXISTS")
	want(t, "A pays", a.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "p"}), 200, "")
	want(t, "B refunds A's order", b.call("POST", "/v3/refunds", map[string]any{"order_no": no, "out_refund_no": out + "-r",
		"amount": map[string]any{"refund": 10}}), 404, "RESOURCE_NOT_EXISTS")
	want(t, "A refunds", a.call("POST", "/v3/refunds", map[string]any{"order_no": no, "out_refund_no": out + "-r",
		"amount": map[string]any{"refund": 10}}), 200, "")
	want(t, "B reads A's refund", b.call("GET", "/v3/refunds/"+out+"-r", nil), 404, "RESOURCE_NOT_EXISTS")
	// B may use the same out_trade_no for an order of its own.
	if bno := b.mustCreate(out, 100); bno == no {
		t.Fatalf("B's order got A's number %s", no)
	}
}

// TestIdempotentCreate: a repeated create returns the first order; the same
// key with a different body is a conflict; concurrent repeats make one order.
func TestIdempotentCreate(t *testing.T) {
	c := startCluster(t, options{units: 3, replicas: 2})
	api := newClient(t, c, 0)
	out := uniq("idem")
	first := api.mustCreate(out, 100)
	if again := api.mustCreate(out, 100); again != first {
		t.Fatalf("repeated create returned %s, want %s", again, first)
	}
	want(t, "same key, other amount", api.call("POST", "/v3/orders", createBody(out, 101)), 409, "OUT_TRADE_NO_USED")

	out2 := uniq("idem-conc")
	nos := make([]string, 20)
	var wg sync.WaitGroup
	for i := range nos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := api.try("POST", "/v3/orders", createBody(out2, 100))
			if err != nil || r.status != 200 {
				t.Errorf("concurrent create %d: %d %v", i, r.status, r.body)
			}
			nos[i] = r.str("order_no")
		}()
	}
	wg.Wait()
	for i, no := range nos {
		if no != nos[0] {
			t.Fatalf("concurrent create %d returned %s, create 0 returned %s", i, no, nos[0])
		}
	}
}

// TestRefundNumberIsUniqueAcrossUnits: an out_refund_no used for a refund of
// an order in one unit is refused for an order in another.
func TestRefundNumberIsUniqueAcrossUnits(t *testing.T) {
	c := startCluster(t, options{units: 2, replicas: 1})
	api := newClient(t, c, 0)
	byUnit := map[tradeunit.UnitID]string{}
	for i := 0; len(byUnit) < 2 && i < 200; i++ {
		r := api.call("POST", "/v3/orders", createBody(uniq(fmt.Sprintf("rn-%d", i)), 100))
		want(t, "create", r, 200, "")
		byUnit[unitOf(r)] = r.str("order_no")
	}
	if len(byUnit) < 2 {
		t.Fatal("200 creates all landed on one unit")
	}
	refund := func(orderNo, outRefundNo string) response {
		want(t, "pay", api.call("POST", "/v3/orders/"+orderNo+"/pay", map[string]any{"payment_id": "p-" + orderNo}), 200, "")
		return api.call("POST", "/v3/refunds", map[string]any{"order_no": orderNo, "out_refund_no": outRefundNo,
			"amount": map[string]any{"refund": 10}})
	}
	no := uniq("rn-refund")
	want(t, "refund on unit 1", refund(byUnit[1], no), 200, "")
	want(t, "same out_refund_no on unit 2", refund(byUnit[2], no), 409, "OUT_REFUND_NO_USED")
	got := api.call("GET", "/v3/refunds/"+no, nil)
	if got.str("order_no") != byUnit[1] {
		t.Fatalf("refund %s belongs to %s, want %s", no, got.str("order_no"), byUnit[1])
	}
}
