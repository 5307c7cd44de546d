// Package querytest is the conformance suite every query store passes: the
// same tests, run against SQLite and PostgreSQL.
package querytest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/query"
)

// Opener opens a fresh, empty query store, closed when the test ends.
type Opener func(t *testing.T) *query.Store

// Run runs the conformance suite; each subtest opens its own store.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *query.Store)
	}{
		{"ReplayAndReorderNeverRegress", testNeverRegress},
		{"RefundsOnce", testRefundsOnce},
		{"ProbeIgnored", testProbeIgnored},
		{"BadEventsRefused", testBadEvents},
		{"ResetAndReapplyDumpsEqual", testResetReapply},
		{"AsOf", testAsOf},
		{"ListPagesWithFilters", testListFilters},
		{"ListStableWhileApplying", testListConcurrent},
		{"ListBadQueries", testListBad},
		{"DailyStats", testDailyStats},
		{"TradeBill", testTradeBill},
		{"TotalsMatchEvents", testTotals},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// The merchants of the tests, and the day most of them happen on.
const (
	mchA = "1900000001"
	mchB = "1900000002"
)

// day0 is midnight of 2026-12-01 in China Standard Time.
var day0 = time.Date(2026, 12, 1, 0, 0, 0, 0, query.ChinaStandardTime)

func mustApply(t *testing.T, s *query.Store, events []tradeunit.OrderEvent) {
	t.Helper()
	if err := s.Apply(context.Background(), events); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// dump returns the store's rows.
func dump(t *testing.T, s *query.Store) ([]tradeunit.EventOrder, []query.Refund) {
	t.Helper()
	o, r, err := s.Dump(context.Background())
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return o, r
}

// want returns the rows a store fed every event of sims must hold.
func want(sims ...*Sim) ([]tradeunit.EventOrder, []query.Refund) {
	orders := []tradeunit.EventOrder{}
	refunds := []query.Refund{}
	for _, s := range sims {
		for _, o := range s.Orders {
			if !tradeunit.IsProbe(o.Mchid) {
				orders = append(orders, *o)
			}
		}
		for _, r := range s.Refunds {
			if !tradeunit.IsProbe(r.Order.Mchid) {
				refunds = append(refunds, query.Refund{EventRefund: r.EventRefund, OrderNo: r.Order.OrderNo, Mchid: r.Order.Mchid})
			}
		}
	}
	slices.SortFunc(orders, func(a, b tradeunit.EventOrder) int { return strings.Compare(a.OrderNo, b.OrderNo) })
	slices.SortFunc(refunds, func(a, b query.Refund) int { return strings.Compare(a.RefundID, b.RefundID) })
	return orders, refunds
}

func checkDump(t *testing.T, s *query.Store, sims ...*Sim) {
	t.Helper()
	gotO, gotR := dump(t, s)
	wantO, wantR := want(sims...)
	if !reflect.DeepEqual(gotO, wantO) {
		t.Errorf("orders:\ngot  %+v\nwant %+v", gotO, wantO)
	}
	if !reflect.DeepEqual(gotR, wantR) {
		t.Errorf("refunds:\ngot  %+v\nwant %+v", gotR, wantR)
	}
}

// lifecycle makes one order of each fate on sim.
func lifecycle(sim *Sim) {
	at := day0.Add(10 * time.Hour)
	sim.Create(mchA, 1000, "CNY", at)
	paid := sim.Create(mchA, 2000, "CNY", at.Add(time.Second))
	sim.Pay(paid, at.Add(2*time.Second))
	refunded := sim.Create(mchB, 3000, "CNY", at.Add(3*time.Second))
	sim.Pay(refunded, at.Add(4*time.Second))
	sim.Refund(refunded, 500, at.Add(5*time.Second))
	sim.Refund(refunded, 700, at.Add(6*time.Second))
	closed := sim.Create(mchB, 4000, "USD", at.Add(7*time.Second))
	sim.Close(closed, at.Add(8*time.Second))
}

func testNeverRegress(t *testing.T, s *query.Store) {
	sim := NewSim(1)
	lifecycle(sim)
	ev := sim.Events
	reversed := slices.Clone(ev)
	slices.Reverse(reversed)
	tests := []struct {
		name    string
		batches [][]tradeunit.OrderEvent
	}{
		{"in order", [][]tradeunit.OrderEvent{ev}},
		{"reversed, one batch", [][]tradeunit.OrderEvent{reversed}},
		{"one by one, reversed", func() (b [][]tradeunit.OrderEvent) {
			for _, e := range reversed {
				b = append(b, []tradeunit.OrderEvent{e})
			}
			return b
		}()},
		{"newest first, then everything twice", [][]tradeunit.OrderEvent{ev[len(ev)-3:], ev, ev}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.batches {
				mustApply(t, s, b)
			}
			checkDump(t, s, sim)
		})
	}
}

func testRefundsOnce(t *testing.T, s *query.Store) {
	sim := NewSim(1)
	o := sim.Create(mchA, 1000, "CNY", day0)
	sim.Pay(o, day0.Add(time.Second))
	sim.Refund(o, 100, day0.Add(2*time.Second))
	refund := sim.Events[len(sim.Events)-1]
	mustApply(t, s, sim.Events)
	mustApply(t, s, []tradeunit.OrderEvent{refund, refund})
	mustApply(t, s, []tradeunit.OrderEvent{refund})
	_, refunds := dump(t, s)
	if len(refunds) != 1 {
		t.Fatalf("got %d refunds, want 1: %+v", len(refunds), refunds)
	}
	checkDump(t, s, sim)
}

func testProbeIgnored(t *testing.T, s *query.Store) {
	sim := NewSim(3)
	o := sim.Create(tradeunit.ProbeMchid, 1, "CNY", day0)
	sim.Close(o, day0.Add(time.Second))
	mustApply(t, s, sim.Events)
	if orders, _ := dump(t, s); len(orders) != 0 {
		t.Errorf("got %d orders, want the probe's ignored: %+v", len(orders), orders)
	}
	// The probe's events were consumed all the same.
	w, err := s.Watermarks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []query.Watermark{{Unit: 3, Seq: 2, Time: day0.Add(time.Second).UTC()}}; !reflect.DeepEqual(w, want) {
		t.Errorf("got watermarks %+v, want %+v", w, want)
	}
}

func testBadEvents(t *testing.T, s *query.Store) {
	sim := NewSim(1)
	sim.Create(mchA, 1000, "CNY", day0)
	good := sim.Events[0]
	with := func(f func(e *tradeunit.OrderEvent)) tradeunit.OrderEvent {
		e := good
		e.ID = "1-99"
		f(&e)
		return e
	}
	tests := []struct {
		name   string
		bad    tradeunit.OrderEvent
		code   tradeunit.Code
		newer  bool
		inText string
	}{
		{"newer schema", with(func(e *tradeunit.OrderEvent) { e.Schema = tradeunit.EventSchema + 1 }), tradeunit.CodeInvalidRequest, true, "newer"},
		{"no schema", with(func(e *tradeunit.OrderEvent) { e.Schema = 0 }), tradeunit.CodeParamError, false, "schema"},
		{"no version", with(func(e *tradeunit.OrderEvent) { e.Order.Version = 0 }), tradeunit.CodeParamError, false, "version"},
		{"no order number", with(func(e *tradeunit.OrderEvent) { e.Order.OrderNo = "" }), tradeunit.CodeParamError, false, "order_no"},
		{"unknown type", with(func(e *tradeunit.OrderEvent) { e.Type = "ORDER_EXPLODED" }), tradeunit.CodeParamError, false, "ORDER_EXPLODED"},
		{"refund without refund", with(func(e *tradeunit.OrderEvent) { e.Type = tradeunit.EventRefundCreated }), tradeunit.CodeParamError, false, "REFUND_CREATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Apply(context.Background(), []tradeunit.OrderEvent{good, tt.bad})
			if !tradeunit.IsCode(err, tt.code) || errors.Is(err, query.ErrNewerSchema) != tt.newer {
				t.Fatalf("got %v, want %s (newer schema: %v)", err, tt.code, tt.newer)
			}
			if !strings.Contains(err.Error(), tt.inText) || !strings.Contains(err.Error(), "1-99") {
				t.Errorf("got message %q, want it to name event 1-99 and %q", err, tt.inText)
			}
			if orders, _ := dump(t, s); len(orders) != 0 {
				t.Errorf("got %d orders, want the whole batch refused", len(orders))
			}
		})
	}
}

func testResetReapply(t *testing.T, s *query.Store) {
	ctx := context.Background()
	sims := []*Sim{NewSim(1), NewSim(2)}
	for _, sim := range sims {
		lifecycle(sim)
		mustApply(t, s, sim.Events)
	}
	beforeO, beforeR := dump(t, s)
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if o, r := dump(t, s); len(o) != 0 || len(r) != 0 {
		t.Fatalf("after Reset: got %d orders, %d refunds, want none", len(o), len(r))
	}
	if asOf, err := s.AsOf(ctx); err != nil || !asOf.IsZero() {
		t.Fatalf("after Reset: got AsOf %v, %v, want the zero time", asOf, err)
	}
	// Replayed the other way round, in small batches.
	all := append(slices.Clone(sims[1].Events), sims[0].Events...)
	for i := 0; i < len(all); i += 3 {
		mustApply(t, s, all[i:min(i+3, len(all))])
	}
	afterO, afterR := dump(t, s)
	if !reflect.DeepEqual(afterO, beforeO) || !reflect.DeepEqual(afterR, beforeR) {
		t.Errorf("after rebuild:\ngot  %+v %+v\nwant %+v %+v", afterO, afterR, beforeO, beforeR)
	}
	checkDump(t, s, sims...)
}

func testAsOf(t *testing.T, s *query.Store) {
	ctx := context.Background()
	asOf := func() time.Time {
		t.Helper()
		got, err := s.AsOf(ctx)
		if err != nil {
			t.Fatalf("AsOf: %v", err)
		}
		return got
	}
	if got := asOf(); !got.IsZero() {
		t.Fatalf("empty store: got AsOf %v, want the zero time", got)
	}
	sim := NewSim(1)
	o := sim.Create(mchA, 100, "CNY", day0)
	sim.Pay(o, day0.Add(time.Minute))
	mustApply(t, s, sim.Events)
	// An older event applied late does not take AsOf back.
	mustApply(t, s, sim.Events[:1])
	if got, want := asOf(), day0.Add(time.Minute); !got.Equal(want) {
		t.Errorf("after events: got AsOf %v, want the newest event's time %v", got, want)
	}
	mark := day0.Add(time.Hour)
	steps := []struct {
		mark, want time.Time
	}{
		{mark, mark},
		{mark.Add(-time.Minute), mark}, // an older mark changes nothing
		{mark.Add(time.Minute), mark.Add(time.Minute)},
	}
	for _, st := range steps {
		if err := s.MarkCaughtUp(ctx, st.mark); err != nil {
			t.Fatal(err)
		}
		if got := asOf(); !got.Equal(st.want) {
			t.Errorf("after MarkCaughtUp(%v): got AsOf %v, want %v", st.mark, got, st.want)
		}
	}
	// A newer event than the mark moves AsOf past it.
	sim.Close(sim.Create(mchA, 100, "CNY", mark.Add(2*time.Minute)), mark.Add(3*time.Minute))
	mustApply(t, s, sim.Events[2:])
	if got, want := asOf(), mark.Add(3*time.Minute); !got.Equal(want) {
		t.Errorf("after a newer event: got AsOf %v, want %v", got, want)
	}
	now := mark.Add(3*time.Minute + 1500*time.Millisecond)
	if lag := now.Sub(asOf()); lag != 1500*time.Millisecond {
		t.Errorf("got lag %v, want 1.5s", lag)
	}
}
