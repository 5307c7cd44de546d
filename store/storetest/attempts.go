package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"tradeunit"
)

// testSupersedeAttempt: an attempt is settled once: the unit's order if it
// made one, else a refusal of that attempt forever; other attempts are not
// affected.
func testSupersedeAttempt(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	// Attempt ids are random uint64s: half of them have the high bit set,
	// which neither database/sql nor SQLite takes as it is.
	const high = 1 << 63
	o := newOrder(t, mchA, 100)
	o.Attempt = high | 11
	made := mustCreate(t, s, o)
	if made.Attempt != high|11 || mustOrder(t, s, o.OrderNo).Attempt != high|11 {
		t.Fatalf("attempt: got %d, want %d stored and returned", mustOrder(t, s, o.OrderNo).Attempt, uint64(high|11))
	}
	// An attempt that made the order, or any other: the order is returned.
	for _, a := range []uint64{high | 11, 12} {
		got, err := s.SupersedeAttempt(ctx, mchA, o.OutTradeNo, a)
		if err != nil || got.OrderNo != o.OrderNo {
			t.Fatalf("supersede attempt %d of an existing order: got %+v, %v; want the order", a, got, err)
		}
	}

	// An attempt that made nothing is refused from then on; others still create.
	fresh := newOrder(t, mchA, 100)
	for i := 0; i < 2; i++ { // idempotent
		_, err := s.SupersedeAttempt(ctx, mchA, fresh.OutTradeNo, high|21)
		wantCode(t, "supersede an attempt that made nothing", err, tradeunit.CodeNotFound)
	}
	fresh.Attempt = high | 21
	_, _, err := s.CreateOrder(ctx, fresh)
	wantCode(t, "create with a superseded attempt", err, tradeunit.CodeAttemptSuperseded)
	if _, err := s.Order(ctx, fresh.OrderNo); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("a refused create wrote its order: %v", err)
	}
	fresh.Attempt = 22
	mustCreate(t, s, fresh)
	if _, err := s.SupersedeAttempt(ctx, mchA, "x-000001", 0); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Errorf("supersede attempt 0: got %v, want PARAM_ERROR", err)
	}
}

// testSupersedeRacesCreate: a create of an attempt and its supersession,
// concurrently, on two handles: either the create committed and the
// supersession returns its order, or the supersession recorded the refusal
// and the create is refused. Never both "not found" and an order.
func testSupersedeRacesCreate(t *testing.T, open Opener) {
	ctx := context.Background()
	a, b := open(t), open(t)
	for round := 0; round < 30; round++ {
		o := newOrder(t, mchA, 100)
		o.Attempt = uint64(1000 + round)
		var (
			created   *tradeunit.Order
			createErr error
			found     *tradeunit.Order
			supErr    error
		)
		hammer(2, func(i int) {
			if i == 0 {
				created, _, createErr = a.CreateOrder(ctx, o)
			} else {
				found, supErr = b.SupersedeAttempt(ctx, mchA, o.OutTradeNo, o.Attempt)
			}
		})
		switch {
		case createErr == nil && supErr == nil:
			if found.OrderNo != created.OrderNo {
				t.Fatalf("round %d: superseding returned %s, the create made %s", round, found.OrderNo, created.OrderNo)
			}
		case tradeunit.IsCode(createErr, tradeunit.CodeAttemptSuperseded) && tradeunit.IsCode(supErr, tradeunit.CodeNotFound):
			if _, err := a.Order(ctx, o.OrderNo); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
				t.Fatalf("round %d: the attempt was superseded but its order exists (%v)", round, err)
			}
		default:
			t.Fatalf("round %d: create %v, supersede %+v %v: want one of the two serial outcomes", round, createErr, found, supErr)
		}
	}
}

// testCloseSuperseded: an orphan is closed for good, and says why.
func testCloseSuperseded(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	orphan := mustCreate(t, s, newOrder(t, mchA, 100))
	winner := newOrder(t, mchA, 100).OrderNo
	for i := 0; i < 2; i++ { // idempotent
		got, err := s.CloseSuperseded(ctx, mchA, orphan.OrderNo, winner, time.Now())
		if err != nil || got.State != tradeunit.StateClosed || got.CloseReason != tradeunit.CloseSuperseded {
			t.Fatalf("close superseded: got %+v, %v", got, err)
		}
	}
	_, err := s.PayOrder(ctx, mchA, orphan.OrderNo, "p", time.Now())
	wantCode(t, "pay a superseded order", err, tradeunit.CodeOrderSuperseded)
	_, err = s.CloseSuperseded(ctx, mchB, orphan.OrderNo, winner, time.Now())
	wantCode(t, "another merchant's order", err, tradeunit.CodeNotFound)
	paid := mustCreate(t, s, newOrder(t, mchA, 100))
	mustStep(t, "pay", pay("p1"), s, paid)
	_, err = s.CloseSuperseded(ctx, mchA, paid.OrderNo, winner, time.Now())
	wantCode(t, "close a paid order as superseded", err, tradeunit.CodeOrderPaid)
	if n := countEvents(t, s, orphan.OrderNo, tradeunit.EventOrderClosed); n != 1 {
		t.Fatalf("ORDER_CLOSED events of the orphan: got %d, want 1", n)
	}
}

// testListAll: every order and refund can be listed, in pages, the probe
// merchant's left out.
func testListAll(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	want := map[string]bool{}
	var refundNos []string
	for i := 0; i < 7; i++ {
		o := mustCreate(t, s, newOrder(t, mchA, 100))
		want[o.OrderNo] = true
		mustStep(t, "pay", pay(fmt.Sprint("p", i)), s, o)
		rno := fmt.Sprintf("r-%s", o.OrderNo[16:])
		if _, _, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, rno, 10)); err != nil {
			t.Fatal(err)
		}
		refundNos = append(refundNos, rno)
	}
	probe := newOrder(t, tradeunit.ProbeMchid, 1)
	mustCreate(t, s, probe)
	got := map[string]bool{}
	for after := ""; ; {
		page, err := s.OrdersAfter(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			if got[o.OrderNo] || o.OrderNo <= after {
				t.Fatalf("order %s listed twice or out of order", o.OrderNo)
			}
			got[o.OrderNo] = true
			after = o.OrderNo
		}
	}
	if len(got) != len(want) || got[probe.OrderNo] {
		t.Fatalf("listed %d orders (probe listed: %v), want the %d merchant orders", len(got), got[probe.OrderNo], len(want))
	}
	var listed []string
	for cursor := int64(0); ; {
		page, next, err := s.RefundsAfter(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			listed = append(listed, r.OutRefundNo)
		}
		cursor = next
	}
	if fmt.Sprint(listed) != fmt.Sprint(refundNos) {
		t.Fatalf("refunds listed %v, want %v in the order they were made", listed, refundNos)
	}
}
