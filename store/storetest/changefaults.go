package storetest

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
)

// RunChangeBatchFaults runs the group commit's fault tests for pays and
// closes: no change of a batch is answered before the batch commits, and a
// batch that fails part-way or at its commit, or is frozen, writes nothing
// and fails every change, so that nothing answered as made is ever lost.
// They reach beneath the Store (raw locks, triggers, a freeze by hand).
func RunChangeBatchFaults(t *testing.T, newStorage func(t *testing.T) RawStorage) {
	t.Run("NoAnswerBeforeCommit", func(t *testing.T) { testChangeBatchWaitsForCommit(t, newStorage(t)) })
	t.Run("FailurePartWayWritesNothing", func(t *testing.T) { testChangeBatchFailsPartWay(t, newStorage(t)) })
	t.Run("LostMidBatchWritesNothing", func(t *testing.T) { testChangeBatchLost(t, newStorage(t)) })
	t.Run("FrozenBatchWritesNothing", func(t *testing.T) { testChangeBatchFrozen(t, newStorage(t)) })
	t.Run("RefundBatchFailurePartWayWritesNothing", func(t *testing.T) { testRefundBatchFailsPartWay(t, newStorage(t)) })
}

// threeOrders creates three NOTPAY orders and returns them in number
// order: a batch changes them in that order, so a lock on the last one
// holds the batch up after it has changed the first two.
func threeOrders(t *testing.T, s tradeunit.Store) []*tradeunit.Order {
	t.Helper()
	orders := []*tradeunit.Order{mustCreate(t, s, newOrder(t, mchA, 100)), mustCreate(t, s, newOrder(t, mchA, 200)),
		mustCreate(t, s, newOrder(t, mchB, 300))}
	slices.SortFunc(orders, func(a, b *tradeunit.Order) int { return strings.Compare(a.OrderNo, b.OrderNo) })
	return orders
}

func paysOf(orders []*tradeunit.Order) []tradeunit.OrderChange {
	changes := make([]tradeunit.OrderChange, len(orders))
	for i, o := range orders {
		changes[i] = payOf(o, "pay-"+o.OrderNo)
	}
	return changes
}

// lockOrder holds the write lock of orderNo's row (SQLite: of the whole
// database) in a transaction of db's, until the returned function rolls
// it back.
func lockOrder(t *testing.T, db *sql.DB, orderNo string) (release func()) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE orders SET description = description WHERE order_no = ?", orderNo); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return func() { tx.Rollback() }
}

// wantStates fails the test unless each order is stored in state want with
// as many ORDER_PAID events as a pay made.
func wantStates(t *testing.T, what string, s tradeunit.Store, orders []*tradeunit.Order, want tradeunit.TradeState) {
	t.Helper()
	for _, o := range orders {
		got := mustOrder(t, s, o.OrderNo)
		paid := countEvents(t, s, o.OrderNo, tradeunit.EventOrderPaid)
		if wantPaid := map[bool]int{true: 1}[want == tradeunit.StateSuccess]; got.State != want || paid != wantPaid {
			t.Errorf("%s: order %s is %s with %d ORDER_PAID events, want %s with %d", what, o.OrderNo, got.State, paid, want, wantPaid)
		}
	}
}

// wantPaidAgain runs the pays of orders again, the fault removed, and
// checks that every one is made.
func wantPaidAgain(t *testing.T, s tradeunit.Store, orders []*tradeunit.Order) {
	t.Helper()
	for i, r := range s.ChangeOrders(context.Background(), paysOf(orders)) {
		if r.Err != nil {
			t.Errorf("again without the fault, change %d: %v", i, r.Err)
		}
	}
	wantStates(t, "after the batch again", s, orders, tradeunit.StateSuccess)
}

// wantAllFailed fails the test unless every change of a batch failed.
func wantAllFailed(t *testing.T, what string, res []tradeunit.ChangeResult) {
	t.Helper()
	for i, r := range res {
		if r.Err == nil {
			t.Errorf("%s: change %d succeeded (%+v), want every change failed", what, i, r.Order)
		}
	}
}

// testChangeBatchWaitsForCommit: while a lock holds a batch up after it
// has changed some of its rows, the batch has not returned and another
// handle sees none of its changes; once it returns, every change it
// answered as made is read by the other handle at once.
func testChangeBatchWaitsForCommit(t *testing.T, st RawStorage) {
	ctx := context.Background()
	s, other := st.Open(t), st.Open(t)
	db := st.DB(t)
	defer db.Close()
	orders := threeOrders(t, s)
	release := lockOrder(t, db, orders[2].OrderNo)
	done := make(chan []tradeunit.ChangeResult, 1)
	go func() { done <- s.ChangeOrders(ctx, paysOf(orders)) }()
	time.Sleep(300 * time.Millisecond) // the batch reaches the lock
	select {
	case res := <-done:
		t.Fatalf("the batch answered %+v while its commit was held up", res)
	default:
	}
	wantStates(t, "while the batch is held up", other, orders, tradeunit.StateNotPay)
	release()
	var res []tradeunit.ChangeResult
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the batch did not return after the lock was released")
	}
	for i, r := range res {
		if r.Err != nil || r.Order.State != tradeunit.StateSuccess {
			t.Errorf("change %d: %+v, %v", i, r.Order, r.Err)
		}
	}
	wantStates(t, "once the batch returned", other, orders, tradeunit.StateSuccess)
}

// testChangeBatchFailsPartWay: a statement of the batch fails after some
// of its rows were changed (a trigger refuses the last order's update):
// every change fails, none is written, and the same batch succeeds once
// the fault is gone.
func testChangeBatchFailsPartWay(t *testing.T, st RawStorage) {
	ctx := context.Background()
	s := st.Open(t)
	db := st.DB(t)
	defer db.Close()
	orders := threeOrders(t, s)
	trigger := map[string]string{
		"sqlite": `CREATE TRIGGER fail_update BEFORE UPDATE ON orders WHEN OLD.order_no = '` + orders[2].OrderNo + `'
			BEGIN SELECT RAISE(ABORT, 'injected fault'); END`,
		"mysql": `CREATE TRIGGER fail_update BEFORE UPDATE ON orders FOR EACH ROW BEGIN
			IF OLD.order_no = '` + orders[2].OrderNo + `' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected fault'; END IF; END`,
	}[st.Dialect]
	if _, err := db.Exec(trigger); err != nil {
		t.Fatalf("trigger (dialect %q): %v", st.Dialect, err)
	}
	res := s.ChangeOrders(ctx, paysOf(orders))
	wantAllFailed(t, "a batch whose last update fails", res)
	t.Logf("a batch failed part-way: %v", res[0].Err)
	for i, r := range res {
		if tradeunit.OutcomeUnknown(r.Err) && tradeunit.ErrorCode(r.Err) != tradeunit.CodeInternal {
			t.Errorf("change %d: %v: a statement's failure before the commit leaves nothing unknown", i, r.Err)
		}
	}
	wantStates(t, "after the failed batch", s, orders, tradeunit.StateNotPay)
	if _, err := db.Exec("DROP TRIGGER fail_update"); err != nil {
		t.Fatal(err)
	}
	wantPaidAgain(t, s, orders)
}

// testChangeBatchLost: the batch's transaction is lost after it changed
// some rows — at its commit (SQLite: a deferred constraint the batch
// broke, checked only then) or with its connection (MySQL: the server
// kills its session while it waits on a lock). Every change fails, each
// error a definite refusal unless it says the outcome is unknown, and
// nothing is written: no change answered as made is missing, and no
// change answered as refused was made.
func testChangeBatchLost(t *testing.T, st RawStorage) {
	ctx := context.Background()
	s := st.Open(t)
	db := st.DB(t)
	defer db.Close()
	orders := threeOrders(t, s)
	var res []tradeunit.ChangeResult
	switch st.Dialect {
	case "sqlite":
		// A row the batch's trigger inserts refers to nothing; the
		// deferred foreign key fails the batch's COMMIT.
		for _, q := range []string{
			"CREATE TABLE fuse_parent (id INTEGER PRIMARY KEY)",
			"CREATE TABLE fuse (parent INTEGER REFERENCES fuse_parent (id) DEFERRABLE INITIALLY DEFERRED)",
			`CREATE TRIGGER fuse_on_pay AFTER UPDATE ON orders WHEN NEW.order_no = '` + orders[1].OrderNo + `'
				BEGIN INSERT INTO fuse VALUES (1); END`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		res = s.ChangeOrders(ctx, paysOf(orders))
		if _, err := db.Exec("DROP TRIGGER fuse_on_pay"); err != nil {
			t.Fatal(err)
		}
	case "mysql":
		release := lockOrder(t, db, orders[2].OrderNo)
		done := make(chan []tradeunit.ChangeResult, 1)
		go func() { done <- s.ChangeOrders(ctx, paysOf(orders)) }()
		var thread int64
		pollFor(t, 10*time.Second, innoDBTrxPoll, "the batch waits on the lock", func() bool {
			return db.QueryRow("SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'").Scan(&thread) == nil
		})
		if _, err := db.Exec("KILL ?", thread); err != nil {
			t.Fatal(err)
		}
		res = <-done
		release()
	default:
		t.Fatalf("no way to lose a transaction of dialect %q", st.Dialect)
	}
	wantAllFailed(t, "a lost batch", res)
	t.Logf("a lost batch's error: %v", res[0].Err)
	wantStates(t, "after the lost batch", s, orders, tradeunit.StateNotPay)
	wantPaidAgain(t, s, orders)
}

// testChangeBatchFrozen: a frozen storage refuses the whole batch before
// it writes anything, every change with ErrStorageFrozen, as it refuses a
// single pay; thawed, the batch goes through.
func testChangeBatchFrozen(t *testing.T, st RawStorage) {
	ctx := context.Background()
	s := st.Open(t)
	db := st.DB(t)
	defer db.Close()
	orders := threeOrders(t, s)
	setFrozen := func(v int) {
		t.Helper()
		if _, err := db.Exec("UPDATE unit_lifecycle SET frozen = ? WHERE id = 1", v); err != nil {
			t.Fatal(err)
		}
	}
	setFrozen(1)
	changes := append(paysOf(orders[:2]), closeOf(orders[2]))
	for i, r := range s.ChangeOrders(ctx, changes) {
		if !errors.Is(r.Err, tradeunit.ErrStorageFrozen) || tradeunit.ErrorCode(r.Err) != tradeunit.CodeUnitUnavailable {
			t.Errorf("frozen, change %d: got %v, want UNIT_UNAVAILABLE wrapping ErrStorageFrozen", i, r.Err)
		}
	}
	_, single := s.PayOrder(ctx, mchA, orders[0].OrderNo, "pay-single", time.Now())
	if !errors.Is(single, tradeunit.ErrStorageFrozen) {
		t.Errorf("frozen, a single pay: got %v, want ErrStorageFrozen", single)
	}
	wantStates(t, "frozen", s, orders, tradeunit.StateNotPay)
	setFrozen(0)
	for i, r := range s.ChangeOrders(ctx, changes) {
		if r.Err != nil {
			t.Errorf("thawed, change %d: %v", i, r.Err)
		}
	}
	wantStates(t, "thawed", s, orders[:2], tradeunit.StateSuccess)
	wantStates(t, "thawed", s, orders[2:], tradeunit.StateClosed)
}

// testRefundBatchFailsPartWay: a batch of refunds whose last refund row
// cannot be written (a trigger refuses it) fails every refund and writes
// none, neither a refund row nor an order's sum, and succeeds once the
// fault is gone.
func testRefundBatchFailsPartWay(t *testing.T, st RawStorage) {
	ctx := context.Background()
	s := st.Open(t)
	db := st.DB(t)
	defer db.Close()
	orders := threeOrders(t, s)
	for i, r := range s.ChangeOrders(ctx, paysOf(orders)) {
		if r.Err != nil {
			t.Fatalf("pay %d: %v", i, r.Err)
		}
	}
	refunds := make([]*tradeunit.Refund, len(orders))
	for i, o := range orders {
		refunds[i] = refund(o.Mchid, o.OrderNo, "fault-"+o.OrderNo, 10)
	}
	last := refunds[len(refunds)-1].OutRefundNo
	trigger := map[string]string{
		"sqlite": `CREATE TRIGGER fail_refund BEFORE INSERT ON refunds WHEN NEW.out_refund_no = '` + last + `'
			BEGIN SELECT RAISE(ABORT, 'injected fault'); END`,
		"mysql": `CREATE TRIGGER fail_refund BEFORE INSERT ON refunds FOR EACH ROW BEGIN
			IF NEW.out_refund_no = '` + last + `' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected fault'; END IF; END`,
	}[st.Dialect]
	if _, err := db.Exec(trigger); err != nil {
		t.Fatalf("trigger (dialect %q): %v", st.Dialect, err)
	}
	wantRefunded := func(what string, sum int64) {
		t.Helper()
		for _, o := range orders {
			if got := mustOrder(t, s, o.OrderNo); got.Refunded != sum || countEvents(t, s, o.OrderNo, tradeunit.EventRefundCreated) != int(sum/10) {
				t.Errorf("%s: order %s has %d refunded and %d REFUND_CREATED events, want %d and %d", what, o.OrderNo,
					got.Refunded, countEvents(t, s, o.OrderNo, tradeunit.EventRefundCreated), sum, sum/10)
			}
		}
	}
	for i, r := range s.CreateRefunds(ctx, refunds) {
		if r.Err == nil {
			t.Errorf("refund %d succeeded (%+v), want every refund of the batch failed", i, r.Stored)
		}
	}
	wantRefunded("after the failed batch", 0)
	for _, r := range refunds {
		if _, err := s.Refund(ctx, r.Mchid, r.OutRefundNo); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
			t.Errorf("refund %s of the failed batch: %v, want it not stored", r.OutRefundNo, err)
		}
	}
	if _, err := db.Exec("DROP TRIGGER fail_refund"); err != nil {
		t.Fatal(err)
	}
	for i, r := range s.CreateRefunds(ctx, refunds) {
		if r.Err != nil || !r.Created {
			t.Errorf("again without the fault, refund %d: %+v", i, r)
		}
	}
	wantRefunded("after the batch again", 10)
}
