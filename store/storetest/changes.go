package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"tradeunit"
)

func payOf(o *tradeunit.Order, paymentID string) tradeunit.OrderChange {
	return tradeunit.OrderChange{Kind: tradeunit.ChangePay, Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: paymentID,
		At: time.Now().UTC().Truncate(time.Microsecond)}
}

func closeOf(o *tradeunit.Order) tradeunit.OrderChange {
	return tradeunit.OrderChange{Kind: tradeunit.ChangeClose, Mchid: o.Mchid, OrderNo: o.OrderNo,
		At: time.Now().UTC().Truncate(time.Microsecond)}
}

// testChangeBatch: a batch of pays and closes answers each change as if
// alone, after the batch's changes before it: a refused change (wrong
// state, another payment, another merchant's order, no such order, an
// unknown kind) fails only itself, a second change of an order sees the
// first's result, and every change made is stored with its one event.
func testChangeBatch(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	paidBefore := mustCreate(t, s, newOrder(t, mchA, 100))
	if _, err := s.PayOrder(ctx, mchA, paidBefore.OrderNo, "pay-before", time.Now()); err != nil {
		t.Fatal(err)
	}
	a, b, c := mustCreate(t, s, newOrder(t, mchA, 100)), mustCreate(t, s, newOrder(t, mchA, 200)), mustCreate(t, s, newOrder(t, mchB, 300))
	last := mustCreate(t, s, newOrder(t, mchA, 400))
	missing := newOrder(t, mchA, 100) // never stored
	otherMerchant := closeOf(c)
	otherMerchant.Mchid = mchA

	tests := []struct {
		name   string
		change tradeunit.OrderChange
		code   tradeunit.Code // "" for success
		state  tradeunit.TradeState
		pay    string // the payment the answer carries
	}{
		{"pay", payOf(a, "pay-a"), "", tradeunit.StateSuccess, "pay-a"},
		{"the same pay again", payOf(a, "pay-a"), "", tradeunit.StateSuccess, "pay-a"},
		{"another payment of a paid order", payOf(a, "pay-other"), tradeunit.CodeOrderPaid, "", ""},
		{"close of an order paid before in the batch", closeOf(a), tradeunit.CodeOrderPaid, "", ""},
		{"close", closeOf(b), "", tradeunit.StateClosed, ""},
		{"pay of an order closed before in the batch", payOf(b, "pay-b"), tradeunit.CodeOrderClosed, "", ""},
		{"the same close again", closeOf(b), "", tradeunit.StateClosed, ""},
		{"repeat of a pay stored before", payOf(paidBefore, "pay-before"), "", tradeunit.StateSuccess, "pay-before"},
		{"another merchant's order", otherMerchant, tradeunit.CodeNotFound, "", ""},
		{"no such order", payOf(missing, "pay-missing"), tradeunit.CodeNotFound, "", ""},
		{"unknown kind", tradeunit.OrderChange{Kind: 99, Mchid: mchA, OrderNo: a.OrderNo}, tradeunit.CodeParamError, "", ""},
		{"pay after the refusals", payOf(last, "pay-last"), "", tradeunit.StateSuccess, "pay-last"},
	}
	changes := make([]tradeunit.OrderChange, len(tests))
	for i, tt := range tests {
		changes[i] = tt.change
	}
	res := s.ChangeOrders(ctx, changes)
	if len(res) != len(tests) {
		t.Fatalf("%d results for %d changes", len(res), len(tests))
	}
	for i, tt := range tests {
		r := res[i]
		if got := tradeunit.ErrorCode(r.Err); got != tt.code {
			t.Errorf("%s: error %v, want code %q", tt.name, r.Err, tt.code)
			continue
		}
		if tt.code != "" {
			if r.Order != nil {
				t.Errorf("%s: refused, but answered with order %+v", tt.name, r.Order)
			}
			continue
		}
		if r.Order == nil || r.Order.OrderNo != tt.change.OrderNo || r.Order.State != tt.state || r.Order.PaymentID != tt.pay {
			t.Errorf("%s: got %+v, want order %s %s paid by %q", tt.name, r.Order, tt.change.OrderNo, tt.state, tt.pay)
		}
	}
	// A repeat is answered with the order as the first change left it,
	// as a repeat alone would be.
	if res[1].Order != nil && res[0].Order != nil && !reflect.DeepEqual(res[1].Order, res[0].Order) {
		t.Errorf("repeated pay: got %+v, the first got %+v", res[1].Order, res[0].Order)
	}
	for _, tt := range []struct {
		o            *tradeunit.Order
		state        tradeunit.TradeState
		paid, closed int
	}{
		{a, tradeunit.StateSuccess, 1, 0},
		{b, tradeunit.StateClosed, 0, 1},
		{c, tradeunit.StateNotPay, 0, 0},
		{paidBefore, tradeunit.StateSuccess, 1, 0},
		{last, tradeunit.StateSuccess, 1, 0},
	} {
		got := mustOrder(t, s, tt.o.OrderNo)
		paid, closed := countEvents(t, s, tt.o.OrderNo, tradeunit.EventOrderPaid), countEvents(t, s, tt.o.OrderNo, tradeunit.EventOrderClosed)
		if got.State != tt.state || paid != tt.paid || closed != tt.closed {
			t.Errorf("order %s: stored %s with %d ORDER_PAID and %d ORDER_CLOSED events, want %s with %d and %d",
				tt.o.OrderNo, got.State, paid, closed, tt.state, tt.paid, tt.closed)
		}
	}
	if want := 2; mustOrder(t, s, a.OrderNo).Version != int64(want) {
		t.Errorf("order %s: version %d after one change, want %d", a.OrderNo, mustOrder(t, s, a.OrderNo).Version, want)
	}
	if got := s.ChangeOrders(ctx, nil); len(got) != 0 {
		t.Errorf("empty batch: got %d results", len(got))
	}
}
