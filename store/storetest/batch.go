package storetest

import (
	"context"
	"testing"

	"tradeunit"
)

// testCreateBatch: a batch's orders are each answered as alone: a
// duplicate key, a superseded attempt and a second order of a key in the
// same batch fail or resolve only themselves, and every order the batch
// answered as created is stored with its event.
func testCreateBatch(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	existing := mustCreate(t, s, newOrder(t, mchA, 100))
	superseded := newOrder(t, mchA, 100)
	superseded.Attempt = 31
	if _, err := s.SupersedeAttempt(ctx, mchA, superseded.OutTradeNo, 31); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("supersede: %v", err)
	}
	dup := newOrder(t, mchA, 100) // a new number for the existing key
	dup.OutTradeNo = existing.OutTradeNo
	first, twin := newOrder(t, mchB, 200), newOrder(t, mchB, 200)
	twin.OutTradeNo = first.OutTradeNo
	fresh := newOrder(t, mchA, 300)

	batch := []*tradeunit.Order{first, dup, superseded, twin, fresh}
	res := s.CreateOrders(ctx, batch)
	if len(res) != len(batch) {
		t.Fatalf("%d results for %d orders", len(res), len(batch))
	}
	for _, tt := range []struct {
		name    string
		i       int
		created bool
		orderNo string
		code    tradeunit.Code
	}{
		{"new order", 0, true, first.OrderNo, ""},
		{"duplicate of a stored key", 1, false, existing.OrderNo, ""},
		{"superseded attempt", 2, false, "", tradeunit.CodeAttemptSuperseded},
		{"second order of a key in the batch", 3, false, first.OrderNo, ""},
		{"new order after the others", 4, true, fresh.OrderNo, ""},
	} {
		r := res[tt.i]
		if got := tradeunit.ErrorCode(r.Err); got != tt.code {
			t.Errorf("%s: error %v, want code %q", tt.name, r.Err, tt.code)
			continue
		}
		if tt.code != "" {
			continue
		}
		if r.Created != tt.created || r.Stored == nil || r.Stored.OrderNo != tt.orderNo {
			t.Errorf("%s: got created %v, %+v; want created %v, order %s", tt.name, r.Created, r.Stored, tt.created, tt.orderNo)
		}
	}
	for _, o := range []*tradeunit.Order{first, fresh} {
		if got := mustOrder(t, s, o.OrderNo); got.Amount != o.Amount || countEvents(t, s, o.OrderNo, tradeunit.EventOrderCreated) != 1 {
			t.Errorf("order %s: stored %+v with %d ORDER_CREATED events, want it with one", o.OrderNo, got, countEvents(t, s, o.OrderNo, tradeunit.EventOrderCreated))
		}
	}
	for _, o := range []*tradeunit.Order{dup, superseded, twin} {
		if _, err := s.Order(ctx, o.OrderNo); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
			t.Errorf("order %s was refused but stored: %v", o.OrderNo, err)
		}
	}

	// All new: one statement per table. Then a new order beside a taken key,
	// with no attempts: the batch's statement fails on the key, and each
	// order is written on its own, the new one once.
	fast := []*tradeunit.Order{newOrder(t, mchA, 1), newOrder(t, mchB, 2), newOrder(t, mchA, 3)}
	fast[1].Attempt = 1 << 63
	for i, r := range s.CreateOrders(ctx, fast) {
		if r.Err != nil || !r.Created || r.Stored.OrderNo != fast[i].OrderNo || r.Stored.Attempt != fast[i].Attempt {
			t.Errorf("all-new batch, order %d: %+v", i, r)
		}
	}
	taken := newOrder(t, mchA, 100)
	taken.OutTradeNo = fast[0].OutTradeNo
	mixed := []*tradeunit.Order{newOrder(t, mchB, 4), taken}
	res = s.CreateOrders(ctx, mixed)
	if res[0].Err != nil || !res[0].Created || res[1].Err != nil || res[1].Created || res[1].Stored.OrderNo != fast[0].OrderNo {
		t.Errorf("a new order beside a taken key: %+v, %+v", res[0], res[1])
	}
	for _, o := range append(fast, mixed[0]) {
		if got := mustOrder(t, s, o.OrderNo); got.Amount != o.Amount || got.Attempt != o.Attempt ||
			countEvents(t, s, o.OrderNo, tradeunit.EventOrderCreated) != 1 {
			t.Errorf("order %s: stored %+v with %d ORDER_CREATED events, want it with one", o.OrderNo, got,
				countEvents(t, s, o.OrderNo, tradeunit.EventOrderCreated))
		}
	}
	if _, err := s.Order(ctx, taken.OrderNo); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Errorf("the taken key's order %s was stored: %v", taken.OrderNo, err)
	}

	if got := s.CreateOrders(ctx, nil); len(got) != 0 {
		t.Errorf("empty batch: got %d results", len(got))
	}
}
