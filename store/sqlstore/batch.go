package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"tradeunit"
)

// insertAll writes a batch of new orders and their ORDER_CREATED events
// with one statement each (and one read for superseded attempts), the fast
// path of CreateOrders: one round trip instead of three per order. It
// reports false, with nothing of the batch written, when some order needs
// the slow path: its attempt was superseded, or its key or number is taken
// (by a stored order or by another of the batch). Other errors fail the
// transaction.
func (s *Store) insertAll(ctx context.Context, tx *sql.Tx, orders []*tradeunit.Order) (bool, error) {
	const op = "store.CreateOrder"
	if superseded, err := s.anySuperseded(ctx, tx, orders); err != nil || superseded {
		return false, err
	}
	if _, err := s.stmts.execFixed(ctx, tx, "SAVEPOINT create_batch"); err != nil {
		return false, s.fail(op, err)
	}
	args := make([]any, 0, 11*len(orders))
	for _, o := range orders {
		args = append(args, o.OrderNo, o.Mchid, o.OutTradeNo, o.Description, o.Amount.Total, o.Amount.Currency,
			string(tradeunit.StateNotPay), formatUnits(o.AbandonedUnits), tradeunit.UnixMicros(o.CreateTime),
			tradeunit.UnixMicros(o.CreateTime), s.dialect.Uint64(o.Attempt))
	}
	q := func() string { return insertOrdersQuery(len(orders)) }
	if _, err := s.stmts.exec(ctx, tx, stmtKey{kind: stmtInsertOrders, rows: len(orders)}, q, args...); err != nil {
		if !s.dialect.IsUniqueViolation(err) {
			return false, s.fail(op, err)
		}
		// A taken key fails the whole statement: back to before it, and
		// each order on its own.
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT create_batch"); err != nil {
			return false, s.fail(op, err)
		}
		return false, nil
	}
	// The events after the orders: see insertEvent.
	events := make([]outboxRow, len(orders))
	for i, o := range orders {
		events[i] = outboxRow{typ: tradeunit.EventOrderCreated, at: o.CreateTime, order: createdOrder(o)}
	}
	if err := s.insertEvents(ctx, tx, events); err != nil {
		return false, s.fail(op, err)
	}
	return true, nil
}

// insertOrdersQuery is insertAll's statement for n orders.
func insertOrdersQuery(n int) string {
	return `INSERT INTO orders (order_no, mchid, out_trade_no, description, total, currency,
		trade_state, abandoned_units, create_time, update_time, attempt, version) VALUES ` +
		valuesList("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)", n)
}

// anySuperseded reports whether an attempt of the batch was superseded,
// with a locking read as insertOrder's (see SupersedeAttempt).
func (s *Store) anySuperseded(ctx context.Context, tx *sql.Tx, orders []*tradeunit.Order) (bool, error) {
	var args []any
	for _, o := range orders {
		if o.Attempt != 0 {
			args = append(args, o.Mchid, o.OutTradeNo, s.dialect.Uint64(o.Attempt))
		}
	}
	if len(args) == 0 {
		return false, nil
	}
	n := len(args) / 3
	q := func() string {
		return "SELECT COUNT(*) FROM superseded_attempts WHERE " +
			strings.Repeat("(mchid = ? AND out_trade_no = ? AND attempt = ?) OR ", n-1) +
			"(mchid = ? AND out_trade_no = ? AND attempt = ?)" + s.dialect.ForUpdate()
	}
	var count int
	if err := s.stmts.queryRow(ctx, tx, stmtKey{kind: stmtSuperseded, rows: n}, q, args...).Scan(&count); err != nil {
		return false, s.fail("store.CreateOrder", err)
	}
	return count > 0, nil
}

// createdOrder is o as a create stores it: NOTPAY at version 1, its times
// at the storage's precision, nothing of a later change.
func createdOrder(o *tradeunit.Order) *tradeunit.Order {
	stored := *o
	stored.State = tradeunit.StateNotPay
	stored.PaymentID, stored.Refunded, stored.CloseReason = "", 0, tradeunit.CloseByMerchant
	stored.CreateTime = tradeunit.FromUnixMicros(tradeunit.UnixMicros(o.CreateTime))
	stored.UpdateTime = stored.CreateTime
	stored.SuccessTime, stored.CloseTime = time.Time{}, time.Time{}
	stored.Version = 1
	return &stored
}
