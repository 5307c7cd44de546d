package e2e

import (
	"fmt"
	"testing"

	"tradeunit/orderno"
)

func TestLifecycleSQLite(t *testing.T) { testLifecycle(t, "sqlite") }

func TestLifecycleMySQL(t *testing.T) { testLifecycle(t, "mysql") }

// testLifecycle drives every public endpoint through a proxy and 3 units.
func testLifecycle(t *testing.T, storage string) {
	c := startCluster(t, options{storage: storage})
	api := newClient(t, c, 0)

	// Create, then read it back by number and by out_trade_no.
	out := uniq("life")
	created := api.call("POST", "/v3/orders", createBody(out, 1000))
	want(t, "create", created, 200, "")
	no := created.str("order_no")
	if _, err := orderno.Parse(no); err != nil || created.str("trade_state") != "NOTPAY" || created.str("mchid") != c.Credentials.Merchants[0].Mchid {
		t.Fatalf("created order %v (parse: %v)", created.body, err)
	}
	if u := unitOf(created); u < 1 || u > 3 {
		t.Fatalf("order on unit %d, want 1..3", u)
	}
	for _, path := range []string{"/v3/orders/" + no, "/v3/orders/out-trade-no/" + out} {
		got := api.call("GET", path, nil)
		want(t, "GET "+path, got, 200, "")
		if got.str("order_no") != no {
			t.Fatalf("GET %s: order %s, want %s", path, got.str("order_no"), no)
		}
	}

	// Pay; paying again with the same payment is idempotent, another is refused.
	paid := api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "wx-pay-1"})
	want(t, "pay", paid, 200, "")
	if paid.str("trade_state") != "SUCCESS" || paid.str("success_time") == "" {
		t.Fatalf("paid order %v", paid.body)
	}
	want(t, "pay again", api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "wx-pay-1"}), 200, "")
	want(t, "pay by another payment", api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": "wx-pay-2"}), 400, "ORDER_PAID")
	want(t, "close paid", api.call("POST", "/v3/orders/"+no+"/close", nil), 400, "ORDER_PAID")

	// Refunds: partial, repeated, too much, the rest, then read back.
	refund := func(outRefundNo string, amount int64) response {
		return api.call("POST", "/v3/refunds", map[string]any{"order_no": no, "out_refund_no": outRefundNo,
			"amount": map[string]any{"refund": amount, "currency": "CNY"}, "reason": "e2e"})
	}
	r1 := refund(out+"-r1", 300)
	want(t, "refund 300", r1, 200, "")
	again := refund(out+"-r1", 300)
	want(t, "refund repeated", again, 200, "")
	if again.str("refund_id") != r1.str("refund_id") {
		t.Fatalf("repeated refund id %s, want %s", again.str("refund_id"), r1.str("refund_id"))
	}
	want(t, "refund too much", refund(out+"-r2", 701), 403, "NOT_ENOUGH")
	want(t, "refund same number, other amount", refund(out+"-r1", 200), 409, "OUT_REFUND_NO_USED")
	want(t, "refund the rest", refund(out+"-r3", 700), 200, "")
	got := api.call("GET", "/v3/refunds/"+out+"-r1", nil)
	want(t, "GET refund", got, 200, "")
	if got.str("order_no") != no || got.str("status") != "SUCCESS" {
		t.Fatalf("refund %v", got.body)
	}
	order := api.call("GET", "/v3/orders/"+no, nil)
	if amount, _ := order.body["amount"].(map[string]any); order.str("trade_state") != "REFUND" || amount["refunded"] != float64(1000) {
		t.Fatalf("order after refunds %v, want REFUND with 1000 refunded", order.body)
	}

	// Close an unpaid order; closing again is idempotent; paying it is refused.
	other := api.mustCreate(uniq("life-close"), 50)
	want(t, "close", api.call("POST", "/v3/orders/"+other+"/close", nil), 204, "")
	want(t, "close again", api.call("POST", "/v3/orders/"+other+"/close", nil), 204, "")
	want(t, "pay closed", api.call("POST", "/v3/orders/"+other+"/pay", map[string]any{"payment_id": "p"}), 400, "ORDER_CLOSED")
	want(t, "refund unpaid", api.call("POST", "/v3/refunds", map[string]any{"order_no": other, "out_refund_no": uniq("r"),
		"amount": map[string]any{"refund": 1, "currency": "CNY"}}), 400, "ORDER_CLOSED")
	if s := api.call("GET", "/v3/orders/"+other, nil).str("trade_state"); s != "CLOSED" {
		t.Fatalf("closed order state %s", s)
	}
}

// TestBadInput checks that callers' mistakes get a clear 4xx and change nothing.
func TestBadInput(t *testing.T) {
	c := startCluster(t, options{units: 2, replicas: 1})
	api := newClient(t, c, 0)
	no := api.mustCreate(uniq("bad"), 100)
	unknownUnit, _ := orderno.New(999, mustTime(), 1)

	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"no key", "POST", "/v3/orders", createBody("x-000001", 1), 401, "UNAUTHORIZED"},
		{"not JSON", "POST", "/v3/orders", "{", 400, "PARAM_ERROR"},
		{"empty body", "POST", "/v3/orders", "", 400, "PARAM_ERROR"},
		{"unknown field", "POST", "/v3/orders", `{"out_trade_no":"abcdef1","description":"d","amount":{"total":1},"totla":2}`, 400, "PARAM_ERROR"},
		{"fractional amount", "POST", "/v3/orders", `{"out_trade_no":"abcdef1","description":"d","amount":{"total":1.5}}`, 400, "PARAM_ERROR"},
		{"zero amount", "POST", "/v3/orders", createBody("abcdef1", 0), 400, "PARAM_ERROR"},
		{"negative amount", "POST", "/v3/orders", createBody("abcdef1", -5), 400, "PARAM_ERROR"},
		{"huge amount", "POST", "/v3/orders", createBody("abcdef1", 1e15), 400, "PARAM_ERROR"},
		{"short out_trade_no", "POST", "/v3/orders", createBody("abc", 1), 400, "PARAM_ERROR"},
		{"bad out_trade_no chars", "POST", "/v3/orders", createBody("abc def", 1), 400, "PARAM_ERROR"},
		{"bad currency", "POST", "/v3/orders", `{"out_trade_no":"abcdef1","description":"d","amount":{"total":1,"currency":"cny"}}`, 400, "PARAM_ERROR"},
		{"no description", "POST", "/v3/orders", `{"out_trade_no":"abcdef1","amount":{"total":1}}`, 400, "PARAM_ERROR"},
		{"malformed order number", "GET", "/v3/orders/12345", nil, 400, "PARAM_ERROR"},
		{"typo in order number", "GET", "/v3/orders/" + typo(no), nil, 400, "PARAM_ERROR"},
		{"unknown unit", "GET", "/v3/orders/" + unknownUnit.String(), nil, 404, "RESOURCE_NOT_EXISTS"},
		{"pay without payment id", "POST", "/v3/orders/" + no + "/pay", `{}`, 400, "PARAM_ERROR"},
		{"pay malformed number", "POST", "/v3/orders/abc/pay", `{"payment_id":"p"}`, 400, "PARAM_ERROR"},
		{"close unknown unit", "POST", "/v3/orders/" + unknownUnit.String() + "/close", nil, 404, "RESOURCE_NOT_EXISTS"},
		{"refund malformed order", "POST", "/v3/refunds", `{"order_no":"1","out_refund_no":"r1","amount":{"refund":1}}`, 400, "PARAM_ERROR"},
		{"refund zero", "POST", "/v3/refunds", fmt.Sprintf(`{"order_no":%q,"out_refund_no":"r1","amount":{"refund":0}}`, no), 400, "PARAM_ERROR"},
		{"missing refund", "GET", "/v3/refunds/nope", nil, 404, "RESOURCE_NOT_EXISTS"},
		{"no such endpoint", "GET", "/v3/nothing", nil, 404, "RESOURCE_NOT_EXISTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := *api
			cl.t = t
			if tt.code == "UNAUTHORIZED" {
				cl.key = ""
			}
			r := cl.call(tt.method, tt.path, tt.body)
			want(t, tt.name, r, tt.status, tt.code)
			if r.str("message") == "" {
				t.Fatalf("error without a message: %v", r.body)
			}
		})
	}
	// Nothing above changed the order.
	if s := api.call("GET", "/v3/orders/"+no, nil).str("trade_state"); s != "NOTPAY" {
		t.Fatalf("order state after bad calls: %s, want NOTPAY", s)
	}
}

// typo changes one digit of an order number.
func typo(no string) string {
	b := []byte(no)
	b[10] = '0' + (b[10]-'0'+1)%10
	return string(b)
}
