package storetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"tradeunit"
)

// outboxOf returns s's outbox: every Store the suite runs on implements
// tradeunit.Outbox.
func outboxOf(t *testing.T, s tradeunit.Store) tradeunit.Outbox {
	t.Helper()
	ob, ok := s.(tradeunit.Outbox)
	if !ok {
		t.Fatalf("%T does not implement tradeunit.Outbox", s)
	}
	return ob
}

// orderEvents returns the events of orderNo, decoded, in outbox order.
func orderEvents(t *testing.T, s tradeunit.Store, orderNo string) []tradeunit.OrderEvent {
	t.Helper()
	var out []tradeunit.OrderEvent
	for _, e := range allEvents(t, s) {
		if e.OrderNo != orderNo {
			continue
		}
		oe, err := e.OrderEvent(unit)
		if err != nil {
			t.Fatalf("event %d: %v", e.ID, err)
		}
		out = append(out, oe)
	}
	return out
}

// testEventSnapshots: every kind of change writes an event that carries
// the order as the change left it, numbered in the order's version order,
// and the last one is the order as stored.
func testEventSnapshots(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	at := time.Now().UTC().Truncate(time.Microsecond)
	paid := mustCreate(t, s, newOrder(t, mchA, 100))
	if _, err := s.PayOrder(ctx, mchA, paid.OrderNo, "wx-1", at); err != nil {
		t.Fatal(err)
	}
	r1 := refund(mchA, paid.OrderNo, "snap-r1", 30)
	r1.Reason = "broken"
	storedR1, _, err := s.CreateRefund(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateRefund(ctx, refund(mchA, paid.OrderNo, "snap-r2", 70)); err != nil {
		t.Fatal(err)
	}
	closed := mustCreate(t, s, newOrder(t, mchA, 100))
	if _, err := s.CloseOrder(ctx, mchA, closed.OrderNo, at); err != nil {
		t.Fatal(err)
	}
	orphan := mustCreate(t, s, newOrder(t, mchA, 100))
	if _, err := s.CloseSuperseded(ctx, mchA, orphan.OrderNo, "winner", at); err != nil {
		t.Fatal(err)
	}
	batch := []*tradeunit.Order{newOrder(t, mchB, 5), newOrder(t, mchB, 6)} // the one-statement path
	for i, r := range s.CreateOrders(ctx, batch) {
		if r.Err != nil || !r.Created || r.Stored.Version != 1 {
			t.Fatalf("batch order %d: got %+v, want created at version 1", i, r)
		}
	}

	type want struct {
		typ      tradeunit.EventType
		state    tradeunit.TradeState
		refunded int64
		refund   int64 // the carried refund's amount, 0: none
	}
	tests := []struct {
		name  string
		order string
		want  []want
	}{
		{"paid and refunded twice", paid.OrderNo, []want{
			{tradeunit.EventOrderCreated, tradeunit.StateNotPay, 0, 0},
			{tradeunit.EventOrderPaid, tradeunit.StateSuccess, 0, 0},
			{tradeunit.EventRefundCreated, tradeunit.StateRefund, 30, 30},
			{tradeunit.EventRefundCreated, tradeunit.StateRefund, 100, 70},
		}},
		{"closed", closed.OrderNo, []want{
			{tradeunit.EventOrderCreated, tradeunit.StateNotPay, 0, 0},
			{tradeunit.EventOrderClosed, tradeunit.StateClosed, 0, 0},
		}},
		{"closed as superseded", orphan.OrderNo, []want{
			{tradeunit.EventOrderCreated, tradeunit.StateNotPay, 0, 0},
			{tradeunit.EventOrderClosed, tradeunit.StateClosed, 0, 0},
		}},
		{"created in a batch", batch[1].OrderNo, []want{{tradeunit.EventOrderCreated, tradeunit.StateNotPay, 0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := orderEvents(t, s, tt.order)
			if len(got) != len(tt.want) {
				t.Fatalf("events: got %d, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				e := got[i]
				if e.Type != w.typ || e.Order.State != w.state || e.Order.Refunded != w.refunded || e.Order.Version != int64(i+1) {
					t.Errorf("event %d: got %s %s refunded %d version %d, want %s %s refunded %d version %d",
						i, e.Type, e.Order.State, e.Order.Refunded, e.Order.Version, w.typ, w.state, w.refunded, i+1)
				}
				if (e.Refund == nil) != (w.refund == 0) || (e.Refund != nil && e.Refund.Amount != w.refund) {
					t.Errorf("event %d: got refund %+v, want amount %d", i, e.Refund, w.refund)
				}
				if e.Schema != tradeunit.EventSchema || e.Seq <= 0 || e.ID != tradeunit.EventID(unit, e.Seq) || e.Unit != unit {
					t.Errorf("event %d: got schema %d id %s unit %d seq %d", i, e.Schema, e.ID, e.Unit, e.Seq)
				}
				if i > 0 && e.Seq <= got[i-1].Seq {
					t.Errorf("event %d: got seq %d after %d, want it increasing", i, e.Seq, got[i-1].Seq)
				}
			}
			// The last event is the order as it is stored.
			stored := mustOrder(t, s, tt.order)
			if last := got[len(got)-1].Order; last != tradeunit.NewEventOrder(stored, stored.Version) {
				t.Errorf("last event's order: got %+v, want %+v", last, tradeunit.NewEventOrder(stored, stored.Version))
			}
		})
	}

	t.Run("times and fields", func(t *testing.T) {
		ev := orderEvents(t, s, paid.OrderNo)
		created, paidEv, refunded := ev[0], ev[1], ev[2]
		if !created.Order.CreateTime.Equal(paid.CreateTime) || !created.Order.UpdateTime.Equal(paid.CreateTime) ||
			!created.Order.SuccessTime.IsZero() || created.Order.PaymentID != "" || created.Order.Total != 100 {
			t.Errorf("ORDER_CREATED: got %+v, want created at %s, unpaid, total 100", created.Order, paid.CreateTime)
		}
		if !paidEv.Order.SuccessTime.Equal(at) || !paidEv.Order.UpdateTime.Equal(at) || paidEv.Order.PaymentID != "wx-1" || !paidEv.Time.Equal(at) {
			t.Errorf("ORDER_PAID: got %+v at %s, want paid by wx-1 at %s", paidEv.Order, paidEv.Time, at)
		}
		if *refunded.Refund != *tradeunit.NewEventRefund(storedR1) {
			t.Errorf("REFUND_CREATED: got refund %+v, want %+v", *refunded.Refund, *tradeunit.NewEventRefund(storedR1))
		}
		closeEv := orderEvents(t, s, orphan.OrderNo)[1]
		if closeEv.Order.CloseReason != tradeunit.CloseSuperseded || !closeEv.Order.CloseTime.Equal(at) {
			t.Errorf("superseded ORDER_CLOSED: got %+v, want reason SUPERSEDED closed at %s", closeEv.Order, at)
		}
	})
}

// testEventsOrderedPerOrder: orders changed concurrently through two
// handles get each order's events numbered in the order of its changes.
func testEventsOrderedPerOrder(t *testing.T, open Opener) {
	handles := []tradeunit.Store{open(t), open(t)}
	const orders = 8
	nos := make([]string, orders)
	var wg sync.WaitGroup
	for i := range orders {
		s := handles[i%2]
		o := mustCreate(t, s, newOrder(t, mchA, 100))
		nos[i] = o.OrderNo
		wg.Go(func() {
			pay("p")(s, o)
			for j := range 3 {
				refundStep(fmt.Sprintf("r%d", j), 10)(s, o)
			}
		})
	}
	wg.Wait()
	for _, no := range nos {
		ev := orderEvents(t, handles[0], no)
		if len(ev) != 5 {
			t.Fatalf("order %s: got %d events, want 5", no, len(ev))
		}
		for i, e := range ev {
			if e.Order.Version != int64(i+1) {
				t.Fatalf("order %s event %d (seq %d): got version %d, want %d", no, i, e.Seq, e.Order.Version, i+1)
			}
		}
	}
}

// eventsIn reads the events of ids alone (each a one-id gap of
// ReadOutbox, nothing after them).
func eventsIn(ctx context.Context, ob tradeunit.Outbox, ids []int64) ([]tradeunit.Event, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	gaps := make([]tradeunit.IDRange, len(ids))
	for i, id := range ids {
		gaps[i] = tradeunit.IDRange{Lo: id, Hi: id}
	}
	return ob.ReadOutbox(ctx, math.MaxInt64, 1, gaps)
}

// testEventsIn: ReadOutbox answers only the gaps' ids that exist, with the
// events after its cursor, oldest first, each once.
func testEventsIn(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	for range 3 {
		mustCreate(t, s, newOrder(t, mchA, 1))
	}
	all := allEvents(t, s)
	ids := func(es []tradeunit.Event) []int64 {
		out := []int64{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	newest := all[len(all)-1].ID
	tests := []struct {
		name string
		ask  []int64
		want []int64
	}{
		{"none", nil, []int64{}},
		{"missing only", []int64{newest + 1, newest + 100}, []int64{}},
		{"out of order, repeated, some missing", []int64{newest, newest + 5, all[0].ID, newest, 0}, []int64{all[0].ID, newest}},
		{"all", ids(all), ids(all)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventsIn(ctx, outboxOf(t, s), tt.ask)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Fatalf("ReadOutbox(gaps %v): got %v, want %v", tt.ask, ids(got), tt.want)
			}
			for _, e := range got {
				if e.Payload == "" || e.OrderNo == "" {
					t.Fatalf("EventsIn: event %d is incomplete: %+v", e.ID, e)
				}
			}
		})
	}
	got, err := outboxOf(t, s).ReadOutbox(ctx, all[1].ID, 10, []tradeunit.IDRange{{Lo: all[0].ID, Hi: all[0].ID}, {Lo: newest + 1, Hi: newest + 9}})
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]int64{all[0].ID}, ids(all[2:])...); !slices.Equal(ids(got), want) {
		t.Fatalf("ReadOutbox(after %d, a gap at %d): got %v, want %v", all[1].ID, all[0].ID, ids(got), want)
	}
	if got, err := outboxOf(t, s).ReadOutbox(ctx, 0, 2, nil); err != nil || !slices.Equal(ids(got), ids(all[:2])) {
		t.Fatalf("ReadOutbox(limit 2): got %v, %v; want %v", ids(got), err, ids(all[:2]))
	}
}
