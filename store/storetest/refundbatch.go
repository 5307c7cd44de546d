package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"tradeunit"
)

// testRefundBatch: a batch of refunds answers each as if alone, after the
// batch's refunds before it: refunds of one order never exceed its total
// together, a repeated refund number is answered with the refund that has
// it and adds nothing to the sum (even when the sum had room for it), a
// refused refund fails only itself, and every refund made is stored with
// its one event, whose snapshot is the order as that refund left it.
func testRefundBatch(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	paid := func(total int64) *tradeunit.Order {
		o := mustCreate(t, s, newOrder(t, mchA, total))
		if _, err := s.PayOrder(ctx, mchA, o.OrderNo, "pay-"+o.OrderNo, time.Now()); err != nil {
			t.Fatal(err)
		}
		return o
	}
	p, q := paid(100), paid(50)
	unpaid := mustCreate(t, s, newOrder(t, mchA, 100))
	theirs := paid(100)
	usd := refund(mchA, q.OrderNo, "rb-usd", 10)
	usd.Amount.Currency = "USD"
	otherMerchant := refund(mchB, theirs.OrderNo, "rb-theirs", 10)

	tests := []struct {
		name    string
		refund  *tradeunit.Refund
		code    tradeunit.Code
		created bool
		same    int // for a repeat: the test whose refund it is answered with
	}{
		{"refund", refund(mchA, p.OrderNo, "rb-1", 40), "", true, -1},
		{"second refund of the order", refund(mchA, p.OrderNo, "rb-2", 50), "", true, -1},
		{"more than the batch left", refund(mchA, p.OrderNo, "rb-3", 20), tradeunit.CodeNotEnough, false, -1},
		{"repeat", refund(mchA, p.OrderNo, "rb-1", 40), "", false, 0},
		{"the number again, for a sum that fits", refund(mchA, p.OrderNo, "rb-1", 5), "", false, 0},
		{"unpaid order", refund(mchA, unpaid.OrderNo, "rb-unpaid", 10), tradeunit.CodeInvalidRequest, false, -1},
		{"another currency", usd, tradeunit.CodeParamError, false, -1},
		{"another merchant's order", otherMerchant, tradeunit.CodeNotFound, false, -1},
		{"refund after the refusals", refund(mchA, q.OrderNo, "rb-q", 50), "", true, -1},
		{"the rest of the order", refund(mchA, p.OrderNo, "rb-rest", 10), "", true, -1},
	}
	refunds := make([]*tradeunit.Refund, len(tests))
	for i, tt := range tests {
		refunds[i] = tt.refund
	}
	res := s.CreateRefunds(ctx, refunds)
	if len(res) != len(tests) {
		t.Fatalf("%d results for %d refunds", len(res), len(tests))
	}
	for i, tt := range tests {
		r := res[i]
		if got := tradeunit.ErrorCode(r.Err); got != tt.code {
			t.Errorf("%s: error %v, want code %q", tt.name, r.Err, tt.code)
			continue
		}
		if tt.code != "" {
			continue
		}
		want := tt.refund
		if tt.same >= 0 {
			want = tests[tt.same].refund
		}
		if r.Created != tt.created || r.Stored == nil || r.Stored.OutRefundNo != want.OutRefundNo || r.Stored.Amount != want.Amount {
			t.Errorf("%s: got created %v, %+v; want created %v, refund %s of %d", tt.name, r.Created, r.Stored, tt.created, want.OutRefundNo, want.Amount.Refund)
		}
		if tt.same >= 0 && res[tt.same].Stored != nil && r.Stored != nil && r.Stored.RefundID != res[tt.same].Stored.RefundID {
			t.Errorf("%s: answered with refund %s, want %s", tt.name, r.Stored.RefundID, res[tt.same].Stored.RefundID)
		}
	}
	for _, tt := range []struct {
		o        *tradeunit.Order
		refunded int64
		state    tradeunit.TradeState
		sums     []int64 // the refunded sum of each REFUND_CREATED event's snapshot, in outbox order
	}{
		{p, 100, tradeunit.StateRefund, []int64{40, 90, 100}},
		{q, 50, tradeunit.StateRefund, []int64{50}},
		{unpaid, 0, tradeunit.StateNotPay, nil},
		{theirs, 0, tradeunit.StateSuccess, nil},
	} {
		got := mustOrder(t, s, tt.o.OrderNo)
		var sums []int64
		for _, e := range orderEvents(t, s, tt.o.OrderNo) {
			if e.Type == tradeunit.EventRefundCreated {
				sums = append(sums, e.Order.Refunded)
			}
		}
		if got.Refunded != tt.refunded || got.State != tt.state || !slices.Equal(sums, tt.sums) {
			t.Errorf("order %s: stored %s, refunded %d, events' sums %v; want %s, %d, %v",
				tt.o.OrderNo, got.State, got.Refunded, sums, tt.state, tt.refunded, tt.sums)
		}
	}
	if got := s.CreateRefunds(ctx, nil); len(got) != 0 {
		t.Errorf("empty batch: got %d results", len(got))
	}
}
