// Package storetest is the conformance suite every tradeunit.Store passes:
// the same tests, run against SQLite and against MariaDB.
package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

// Opener opens a handle on one storage. Calling it again opens another handle
// on the same storage, as a second logic-service replica of the unit would.
// Handles are closed when the test ends.
type Opener func(t *testing.T) tradeunit.Store

// Run runs the conformance suite. newStorage creates a fresh, empty storage
// for each subtest and returns an Opener for it.
func Run(t *testing.T, newStorage func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"CreateIsIdempotentPerOutTradeNo", testCreateIdempotent},
		{"Lifecycle", testLifecycle},
		{"MerchantIsolation", testMerchantIsolation},
		{"RefundsSumToAtMostTotal", testRefunds},
		{"ConcurrentPayHasOneWinner", testConcurrentPay},
		{"ConcurrentRefundsNeverExceedTotal", testConcurrentRefunds},
		{"ConcurrentSameRefundRefundsOnce", testConcurrentSameRefund},
		{"ConcurrentCreateAcrossHandles", testConcurrentCreate},
		{"CreateBatchAnswersEachOrderAlone", testCreateBatch},
		{"ChangeBatchAnswersEachChangeAlone", testChangeBatch},
		{"RefundBatchAnswersEachRefundAlone", testRefundBatch},
		{"SequenceBlocksAreDisjoint", testSequence},
		{"EventsFollowEveryChange", testEvents},
		{"SurvivesReopen", testReopen},
		{"BindsOneUnit", testBindUnit},
		{"DeleteProbeOrdersOnlyOldProbes", testDeleteProbeOrders},
		{"SupersedeAttemptSettlesIt", testSupersedeAttempt},
		{"SupersedeRacesCreate", testSupersedeRacesCreate},
		{"CloseSupersededForGood", testCloseSuperseded},
		{"ListAllOrdersAndRefunds", testListAll},
		{"EventsCarrySnapshots", testEventSnapshots},
		{"EventsOrderedPerOrder", testEventsOrderedPerOrder},
		{"EventsInOnlyExisting", testEventsIn},
		{"RelayLeaseFencesCursor", testRelayLease},
		{"TotalsPerMerchant", testTotals},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStorage(t)) })
	}
}

const (
	unit tradeunit.UnitID = 7
	mchA                  = "1900000001"
	mchB                  = "1900000002"
)

var seq atomic.Uint64

// newOrder returns an unsaved NOTPAY order with a fresh order number.
func newOrder(t *testing.T, mchid string, total int64) *tradeunit.Order {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	n, err := orderno.New(unit, now, seq.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	return &tradeunit.Order{
		OrderNo: n.String(), Mchid: mchid, OutTradeNo: "out-" + n.String()[16:],
		Description: "conformance", Amount: tradeunit.Amount{Total: total, Currency: "CNY"},
		CreateTime: now,
	}
}

func mustCreate(t *testing.T, s tradeunit.Store, o *tradeunit.Order) *tradeunit.Order {
	t.Helper()
	got, created, err := s.CreateOrder(context.Background(), o)
	if err != nil || !created {
		t.Fatalf("CreateOrder: created %v, err %v", created, err)
	}
	return got
}

func refund(mchid, orderNo, outRefundNo string, amount int64) *tradeunit.Refund {
	return &tradeunit.Refund{
		Mchid: mchid, OrderNo: orderNo, OutRefundNo: outRefundNo,
		Amount: tradeunit.RefundAmount{Refund: amount, Currency: "CNY"}, CreateTime: time.Now().UTC(),
	}
}

func wantCode(t *testing.T, what string, err error, want tradeunit.Code) {
	t.Helper()
	if got := tradeunit.ErrorCode(err); got != want {
		t.Fatalf("%s: got error code %q (%v), want %q", what, got, err, want)
	}
}

func testCreateAndRead(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	o := newOrder(t, mchA, 1234)
	o.AbandonedUnits = []tradeunit.UnitID{3, 9}
	created := mustCreate(t, s, o)
	if created.State != tradeunit.StateNotPay {
		t.Fatalf("state: got %s, want NOTPAY", created.State)
	}
	for name, get := range map[string]func() (*tradeunit.Order, error){
		"by number":       func() (*tradeunit.Order, error) { return s.Order(ctx, o.OrderNo) },
		"by out_trade_no": func() (*tradeunit.Order, error) { return s.OrderByOutTradeNo(ctx, mchA, o.OutTradeNo) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.OrderNo != o.OrderNo || got.Mchid != mchA || got.OutTradeNo != o.OutTradeNo ||
			got.Description != o.Description || got.Amount != o.Amount || got.State != tradeunit.StateNotPay ||
			!got.CreateTime.Equal(o.CreateTime) || len(got.AbandonedUnits) != 2 || got.AbandonedUnits[1] != 9 {
			t.Fatalf("%s: got %+v, want %+v", name, got, o)
		}
	}
	_, err := s.Order(ctx, "1000010000000000000000000000")
	wantCode(t, "missing order", err, tradeunit.CodeNotFound)
	_, err = s.OrderByOutTradeNo(ctx, mchB, o.OutTradeNo)
	wantCode(t, "other merchant's out_trade_no", err, tradeunit.CodeNotFound)
}

func testCreateIdempotent(t *testing.T, open Opener) {
	s := open(t)
	first := mustCreate(t, s, newOrder(t, mchA, 100))
	again := newOrder(t, mchA, 999) // new order number, same merchant key
	again.OutTradeNo = first.OutTradeNo
	got, created, err := s.CreateOrder(context.Background(), again)
	if err != nil || created {
		t.Fatalf("repeat create: created %v, err %v; want the existing order", created, err)
	}
	if got.OrderNo != first.OrderNo || got.Amount.Total != 100 {
		t.Fatalf("repeat create returned %s (total %d), want %s (total 100)", got.OrderNo, got.Amount.Total, first.OrderNo)
	}
	// The same out_trade_no under another merchant is another order.
	other := newOrder(t, mchB, 100)
	other.OutTradeNo = first.OutTradeNo
	mustCreate(t, s, other)
}

// step applies one move to an order and returns its error.
type step func(s tradeunit.Store, o *tradeunit.Order) error

func pay(id string) step {
	return func(s tradeunit.Store, o *tradeunit.Order) error {
		_, err := s.PayOrder(context.Background(), o.Mchid, o.OrderNo, id, time.Now())
		return err
	}
}

func closeOrder(s tradeunit.Store, o *tradeunit.Order) error {
	_, err := s.CloseOrder(context.Background(), o.Mchid, o.OrderNo, time.Now())
	return err
}

func refundStep(outRefundNo string, amount int64) step {
	return func(s tradeunit.Store, o *tradeunit.Order) error {
		// Subtests share a storage: make the refund number unique to the order.
		_, _, err := s.CreateRefund(context.Background(), refund(o.Mchid, o.OrderNo, outRefundNo+"-"+o.OrderNo, amount))
		return err
	}
}

func testLifecycle(t *testing.T, open Opener) {
	s := open(t)
	tests := []struct {
		name      string
		before    []step
		move      step
		wantCode  tradeunit.Code
		wantState tradeunit.TradeState
	}{
		{"pay NOTPAY", nil, pay("p1"), "", tradeunit.StateSuccess},
		{"pay again same payment is idempotent", []step{pay("p1")}, pay("p1"), "", tradeunit.StateSuccess},
		{"pay again other payment", []step{pay("p1")}, pay("p2"), tradeunit.CodeOrderPaid, tradeunit.StateSuccess},
		{"pay CLOSED", []step{closeOrder}, pay("p1"), tradeunit.CodeOrderClosed, tradeunit.StateClosed},
		{"pay REFUND same payment", []step{pay("p1"), refundStep("r1", 10)}, pay("p1"), "", tradeunit.StateRefund},
		{"close NOTPAY", nil, closeOrder, "", tradeunit.StateClosed},
		{"close CLOSED is idempotent", []step{closeOrder}, closeOrder, "", tradeunit.StateClosed},
		{"close SUCCESS", []step{pay("p1")}, closeOrder, tradeunit.CodeOrderPaid, tradeunit.StateSuccess},
		{"close REFUND", []step{pay("p1"), refundStep("r1", 10)}, closeOrder, tradeunit.CodeOrderPaid, tradeunit.StateRefund},
		{"refund NOTPAY", nil, refundStep("r1", 10), tradeunit.CodeInvalidRequest, tradeunit.StateNotPay},
		{"refund CLOSED", []step{closeOrder}, refundStep("r1", 10), tradeunit.CodeOrderClosed, tradeunit.StateClosed},
		{"refund SUCCESS partial", []step{pay("p1")}, refundStep("r1", 10), "", tradeunit.StateRefund},
		{"refund SUCCESS full", []step{pay("p1")}, refundStep("r1", 100), "", tradeunit.StateRefund},
		{"refund more than paid", []step{pay("p1")}, refundStep("r1", 101), tradeunit.CodeNotEnough, tradeunit.StateSuccess},
		{"refund REFUND rest", []step{pay("p1"), refundStep("r1", 60)}, refundStep("r2", 40), "", tradeunit.StateRefund},
		{"refund REFUND beyond rest", []step{pay("p1"), refundStep("r1", 60)}, refundStep("r2", 41), tradeunit.CodeNotEnough, tradeunit.StateRefund},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustCreate(t, s, newOrder(t, mchA, 100))
			for i, st := range tt.before {
				if err := st(s, o); err != nil {
					t.Fatalf("setup step %d: %v", i, err)
				}
			}
			wantCode(t, "move", tt.move(s, o), tt.wantCode)
			got, err := s.Order(context.Background(), o.OrderNo)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.wantState {
				t.Fatalf("state: got %s, want %s", got.State, tt.wantState)
			}
		})
	}
	t.Run("refund in another currency", func(t *testing.T) {
		o := mustCreate(t, s, newOrder(t, mchA, 100))
		pay("p1")(s, o)
		r := refund(mchA, o.OrderNo, "r-usd", 10)
		r.Amount.Currency = "USD"
		_, _, err := s.CreateRefund(context.Background(), r)
		wantCode(t, "USD refund of CNY order", err, tradeunit.CodeParamError)
	})
	t.Run("pay records payment and time", func(t *testing.T) {
		o := mustCreate(t, s, newOrder(t, mchA, 100))
		got, err := s.PayOrder(context.Background(), mchA, o.OrderNo, "wx-123", time.Now())
		if err != nil || got.PaymentID != "wx-123" || got.SuccessTime.IsZero() {
			t.Fatalf("got %+v, %v; want payment wx-123 with a success time", got, err)
		}
	})
	t.Run("moves on a missing order", func(t *testing.T) {
		ghost := newOrder(t, mchA, 100)
		for name, st := range map[string]step{"pay": pay("p"), "close": closeOrder, "refund": refundStep("r-ghost", 1)} {
			wantCode(t, name, st(s, ghost), tradeunit.CodeNotFound)
		}
	})
}

func testMerchantIsolation(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	o := mustCreate(t, s, newOrder(t, mchA, 100))
	_, err := s.PayOrder(ctx, mchB, o.OrderNo, "p", time.Now())
	wantCode(t, "B pays A's order", err, tradeunit.CodeNotFound)
	_, err = s.CloseOrder(ctx, mchB, o.OrderNo, time.Now())
	wantCode(t, "B closes A's order", err, tradeunit.CodeNotFound)
	if _, err := s.PayOrder(ctx, mchA, o.OrderNo, "p", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.CreateRefund(ctx, refund(mchB, o.OrderNo, "r1", 10))
	wantCode(t, "B refunds A's order", err, tradeunit.CodeNotFound)
	if _, _, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "r1", 10)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refund(ctx, mchB, "r1")
	wantCode(t, "B reads A's refund", err, tradeunit.CodeNotFound)
	got := mustOrder(t, s, o.OrderNo)
	if got.Refunded != 10 || got.PaymentID != "p" {
		t.Fatalf("after B's attempts: refunded %d payment %q, want 10 and p", got.Refunded, got.PaymentID)
	}
}

func testRefunds(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	o := mustCreate(t, s, newOrder(t, mchA, 100))
	mustStep(t, "pay", pay("p"), s, o)
	first, created, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "r1", 30))
	if err != nil || !created || first.RefundID == "" || first.Status != tradeunit.RefundSuccess {
		t.Fatalf("first refund: %+v created %v err %v", first, created, err)
	}
	again, created, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "r1", 30))
	if err != nil || created || again.RefundID != first.RefundID {
		t.Fatalf("repeat refund: got %+v created %v err %v, want the first (%s) not created", again, created, err, first.RefundID)
	}
	got, err := s.Refund(ctx, mchA, "r1")
	if err != nil || got.RefundID != first.RefundID || got.Amount.Refund != 30 || got.OrderNo != o.OrderNo {
		t.Fatalf("Refund: got %+v, %v", got, err)
	}
	if _, _, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "r2", 70)); err != nil {
		t.Fatal(err)
	}
	// The order is fully refunded; a repeat of r1 still returns r1.
	if again, _, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "r1", 30)); err != nil || again.RefundID != first.RefundID {
		t.Fatalf("repeat after full refund: %+v, %v", again, err)
	}
	ord := mustOrder(t, s, o.OrderNo)
	if ord.Refunded != 100 || ord.State != tradeunit.StateRefund {
		t.Fatalf("order after refunds: refunded %d state %s, want 100 REFUND", ord.Refunded, ord.State)
	}
}

// hammer runs fn from n goroutines released at once.
func hammer(n int, fn func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			fn(i)
		}()
	}
	start.Done()
	done.Wait()
}

const goroutines = 50

func testConcurrentPay(t *testing.T, open Opener) {
	s1, s2 := open(t), open(t)
	o := mustCreate(t, s1, newOrder(t, mchA, 100))
	var wins, paid, other atomic.Int32
	hammer(goroutines, func(i int) {
		s := []tradeunit.Store{s1, s2}[i%2]
		_, err := s.PayOrder(context.Background(), mchA, o.OrderNo, "pay-"+string(rune('A'+i)), time.Now())
		switch tradeunit.ErrorCode(err) {
		case "":
			wins.Add(1)
		case tradeunit.CodeOrderPaid:
			paid.Add(1)
		default:
			other.Add(1)
			t.Errorf("pay %d: %v", i, err)
		}
	})
	if wins.Load() != 1 || paid.Load() != goroutines-1 {
		t.Fatalf("got %d winners and %d ORDER_PAID (%d other), want 1 and %d", wins.Load(), paid.Load(), other.Load(), goroutines-1)
	}
	if n := countEvents(t, s1, o.OrderNo, tradeunit.EventOrderPaid); n != 1 {
		t.Fatalf("ORDER_PAID events: got %d, want 1", n)
	}
}

func testConcurrentRefunds(t *testing.T, open Opener) {
	ctx := context.Background()
	s1, s2 := open(t), open(t)
	o := mustCreate(t, s1, newOrder(t, mchA, 1000))
	mustStep(t, "pay", pay("p"), s1, o)
	var ok, notEnough atomic.Int32
	hammer(goroutines, func(i int) {
		s := []tradeunit.Store{s1, s2}[i%2]
		_, _, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "cr-"+string(rune('A'+i)), 30))
		switch tradeunit.ErrorCode(err) {
		case "":
			ok.Add(1)
		case tradeunit.CodeNotEnough:
			notEnough.Add(1)
		default:
			t.Errorf("refund %d: %v", i, err)
		}
	})
	if ok.Load() != 33 || notEnough.Load() != goroutines-33 {
		t.Fatalf("got %d refunds and %d NOT_ENOUGH, want 33 and %d", ok.Load(), notEnough.Load(), goroutines-33)
	}
	got := mustOrder(t, s1, o.OrderNo)
	if got.Refunded != 990 {
		t.Fatalf("refunded sum: got %d, want 990", got.Refunded)
	}
	if n := countEvents(t, s1, o.OrderNo, tradeunit.EventRefundCreated); n != 33 {
		t.Fatalf("REFUND_CREATED events: got %d, want 33", n)
	}
}

func testConcurrentSameRefund(t *testing.T, open Opener) {
	ctx := context.Background()
	s1, s2 := open(t), open(t)
	o := mustCreate(t, s1, newOrder(t, mchA, 1000))
	mustStep(t, "pay", pay("p"), s1, o)
	ids := make([]string, goroutines)
	var created atomic.Int32
	hammer(goroutines, func(i int) {
		s := []tradeunit.Store{s1, s2}[i%2]
		r, c, err := s.CreateRefund(ctx, refund(mchA, o.OrderNo, "same", 100))
		if err != nil {
			t.Errorf("refund %d: %v", i, err)
			return
		}
		if c {
			created.Add(1)
		}
		ids[i] = r.RefundID
	})
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("refund %d has id %s, refund 0 has %s", i, id, ids[0])
		}
	}
	got := mustOrder(t, s1, o.OrderNo)
	if created.Load() != 1 || got.Refunded != 100 {
		t.Fatalf("got %d created and refunded %d, want 1 and 100", created.Load(), got.Refunded)
	}
}

func testConcurrentCreate(t *testing.T, open Opener) {
	s1, s2 := open(t), open(t)
	proto := newOrder(t, mchA, 100)
	nos := make([]string, goroutines)
	var created atomic.Int32
	hammer(goroutines, func(i int) {
		o := *proto // a new order number for each, as replicas would allocate
		no, err := orderno.New(unit, time.Now(), seq.Add(1))
		if err != nil {
			t.Errorf("create %d: %v", i, err)
			return
		}
		o.OrderNo = no.String()
		got, c, err := []tradeunit.Store{s1, s2}[i%2].CreateOrder(context.Background(), &o)
		if err != nil {
			t.Errorf("create %d: %v", i, err)
			return
		}
		if c {
			created.Add(1)
		}
		nos[i] = got.OrderNo
	})
	for i := range nos {
		if nos[i] != nos[0] {
			t.Fatalf("create %d returned %s, create 0 returned %s", i, nos[i], nos[0])
		}
	}
	if created.Load() != 1 {
		t.Fatalf("created %d orders for one out_trade_no, want 1", created.Load())
	}
}

func testSequence(t *testing.T, open Opener) {
	handles := []tradeunit.Store{open(t), open(t)}
	const block = 10
	var mu sync.Mutex
	seen := map[int64]bool{}
	hammer(20, func(i int) {
		for j := 0; j < 5; j++ {
			first, err := handles[i%2].AllocateSequence(context.Background(), block)
			if err != nil {
				t.Errorf("allocate: %v", err)
				return
			}
			mu.Lock()
			for v := first; v < first+block; v++ {
				if seen[v] {
					t.Errorf("sequence %d handed out twice", v)
				}
				seen[v] = true
			}
			mu.Unlock()
		}
	})
	if len(seen) != 20*5*block {
		t.Fatalf("got %d distinct sequence numbers, want %d", len(seen), 20*5*block)
	}
	_, err := handles[0].AllocateSequence(context.Background(), 0)
	wantCode(t, "block of 0", err, tradeunit.CodeParamError)
}

func countEvents(t *testing.T, s tradeunit.Store, orderNo string, typ tradeunit.EventType) int {
	t.Helper()
	n := 0
	for _, e := range allEvents(t, s) {
		if e.OrderNo == orderNo && e.Type == typ {
			n++
		}
	}
	return n
}

func allEvents(t *testing.T, s tradeunit.Store) []tradeunit.Event {
	t.Helper()
	var out []tradeunit.Event
	after := int64(0)
	for {
		page, err := s.Events(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].ID
	}
}

func testEvents(t *testing.T, open Opener) {
	s := open(t)
	o := mustCreate(t, s, newOrder(t, mchA, 100))
	mustStep(t, "pay", pay("p"), s, o)
	pay("p")(s, o) // idempotent repeat: no second event
	refundStep("r1", 10)(s, o)
	pay("other")(s, o) // refused: no event
	var got []tradeunit.EventType
	for _, e := range allEvents(t, s) {
		if e.OrderNo == o.OrderNo {
			got = append(got, e.Type)
		}
	}
	want := []tradeunit.EventType{tradeunit.EventOrderCreated, tradeunit.EventOrderPaid, tradeunit.EventRefundCreated}
	if len(got) != len(want) {
		t.Fatalf("events: got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events: got %v, want %v", got, want)
		}
	}
}

func testReopen(t *testing.T, open Opener) {
	s := open(t)
	o := mustCreate(t, s, newOrder(t, mchA, 100))
	mustStep(t, "pay", pay("p"), s, o)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := open(t).Order(context.Background(), o.OrderNo)
	if err != nil || got.State != tradeunit.StateSuccess {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func testDeleteProbeOrders(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	cutoff := time.Now().UTC().Truncate(time.Microsecond)
	aged := func(mchid string, age time.Duration) *tradeunit.Order {
		o := newOrder(t, mchid, 1)
		o.CreateTime = cutoff.Add(-age)
		return mustCreate(t, s, o)
	}
	var oldProbes []*tradeunit.Order
	for i := 0; i < 5; i++ {
		oldProbes = append(oldProbes, aged(tradeunit.ProbeMchid, time.Duration(i+1)*time.Minute))
	}
	closeOrder(s, oldProbes[0]) // probes close their orders: the ORDER_CLOSED event goes too
	newProbe := aged(tradeunit.ProbeMchid, -time.Second)
	merchant := aged(mchA, time.Hour) // older than every probe, and never deleted
	mustStep(t, "pay", pay("p"), s, merchant)
	refundStep("r1", 1)(s, merchant)

	_, err := s.DeleteProbeOrders(ctx, cutoff, 0)
	wantCode(t, "limit 0", err, tradeunit.CodeParamError)
	n, err := s.DeleteProbeOrders(ctx, cutoff, 3)
	if err != nil || n != 3 {
		t.Fatalf("first pass: deleted %d, err %v; want 3 (the limit)", n, err)
	}
	n, err = s.DeleteProbeOrders(ctx, cutoff, 100)
	if err != nil || n != 2 {
		t.Fatalf("second pass: deleted %d, err %v; want the 2 old probes left", n, err)
	}
	if n, err := s.DeleteProbeOrders(ctx, cutoff, 100); err != nil || n != 0 {
		t.Fatalf("third pass: deleted %d, err %v; want 0", n, err)
	}
	for _, o := range oldProbes {
		_, err := s.Order(ctx, o.OrderNo)
		wantCode(t, "old probe order", err, tradeunit.CodeNotFound)
	}
	for _, o := range []*tradeunit.Order{newProbe, merchant} {
		if _, err := s.Order(ctx, o.OrderNo); err != nil {
			t.Fatalf("order %s of %s was deleted: %v", o.OrderNo, o.Mchid, err)
		}
	}
	if _, err := s.Refund(ctx, mchA, "r1-"+merchant.OrderNo); err != nil {
		t.Fatalf("merchant's refund: %v", err)
	}
	left := map[string]int{}
	for _, e := range allEvents(t, s) {
		left[e.OrderNo]++
	}
	for _, o := range oldProbes {
		if left[o.OrderNo] != 0 {
			t.Fatalf("events of deleted probe order %s remain", o.OrderNo)
		}
	}
	if left[newProbe.OrderNo] != 1 || left[merchant.OrderNo] != 3 {
		t.Fatalf("events left: new probe %d, merchant %d; want 1 and 3", left[newProbe.OrderNo], left[merchant.OrderNo])
	}
}

// mustStep applies a setup step that must succeed.
func mustStep(t *testing.T, what string, st step, s tradeunit.Store, o *tradeunit.Order) {
	t.Helper()
	if err := st(s, o); err != nil {
		t.Fatalf("setup %s: %v", what, err)
	}
}

func mustOrder(t *testing.T, s tradeunit.Store, orderNo string) *tradeunit.Order {
	t.Helper()
	o, err := s.Order(context.Background(), orderNo)
	if err != nil {
		t.Fatalf("read order %s: %v", orderNo, err)
	}
	return o
}
