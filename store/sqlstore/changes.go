package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"tradeunit"
)

// guarded is one state change of an order: an UPDATE that matches the row
// only in the state the change starts from, the event it writes, and the
// rule that explains a guard that matched nothing (a repeat, or a refusal).
type guarded struct {
	op, mchid, orderNo string
	update             string
	args               []any
	event              tradeunit.EventType
	at                 time.Time
	check              func(*tradeunit.Order) (done bool, err error)
	invalid            error // the change cannot be made at all; nothing runs
}

func payChange(mchid, orderNo, paymentID string, at time.Time) guarded {
	return guarded{op: "store.PayOrder", mchid: mchid, orderNo: orderNo,
		update: `UPDATE orders SET trade_state = 'SUCCESS', payment_id = ?, success_time = ?, update_time = ?, version = version + 1
		 WHERE order_no = ? AND mchid = ? AND trade_state = 'NOTPAY'`,
		args:  []any{paymentID, tradeunit.UnixMicros(at), tradeunit.UnixMicros(at), orderNo, mchid},
		event: tradeunit.EventOrderPaid, at: at,
		check: func(o *tradeunit.Order) (bool, error) { return o.CheckPay(paymentID) }}
}

func closeChange(mchid, orderNo string, at time.Time) guarded {
	return guarded{op: "store.CloseOrder", mchid: mchid, orderNo: orderNo,
		update: `UPDATE orders SET trade_state = 'CLOSED', close_time = ?, update_time = ?, version = version + 1
		 WHERE order_no = ? AND mchid = ? AND trade_state = 'NOTPAY'`,
		args:  []any{tradeunit.UnixMicros(at), tradeunit.UnixMicros(at), orderNo, mchid},
		event: tradeunit.EventOrderClosed, at: at,
		check: func(o *tradeunit.Order) (bool, error) { return o.CheckClose() }}
}

func closeSupersededChange(mchid, orderNo string, at time.Time) guarded {
	return guarded{op: "store.CloseSuperseded", mchid: mchid, orderNo: orderNo,
		update: `UPDATE orders SET trade_state = 'CLOSED', close_reason = 'SUPERSEDED', close_time = ?, update_time = ?, version = version + 1
		 WHERE order_no = ? AND mchid = ? AND trade_state = 'NOTPAY'`,
		args:  []any{tradeunit.UnixMicros(at), tradeunit.UnixMicros(at), orderNo, mchid},
		event: tradeunit.EventOrderClosed, at: at,
		check: func(o *tradeunit.Order) (bool, error) { return o.CheckClose() }}
}

func guardedOf(c tradeunit.OrderChange) guarded {
	switch c.Kind {
	case tradeunit.ChangePay:
		return payChange(c.Mchid, c.OrderNo, c.PaymentID, c.At)
	case tradeunit.ChangeClose:
		return closeChange(c.Mchid, c.OrderNo, c.At)
	}
	return guarded{invalid: tradeunit.Errorf(tradeunit.CodeParamError, "unknown order change kind %d", c.Kind)}
}

// ChangeOrders pays and closes orders in one transaction; see
// tradeunit.Store.
func (s *Store) ChangeOrders(ctx context.Context, changes []tradeunit.OrderChange) []tradeunit.ChangeResult {
	gs := make([]guarded, len(changes))
	for i, c := range changes {
		gs[i] = guardedOf(c)
	}
	return s.applyGuarded(ctx, "store.ChangeOrders", gs)
}

// transition makes one guarded change in a transaction of its own.
func (s *Store) transition(ctx context.Context, g guarded) (*tradeunit.Order, error) {
	r := s.applyGuarded(ctx, g.op, []guarded{g})[0]
	return r.Order, r.Err
}

// applyGuarded makes changes in one transaction (one pass of the freeze
// fence for all of them, as for one) and answers each with the order it
// left, or why its guard matched nothing. Changes run in order-number
// order, two of one order in their batch order: every transaction takes
// the rows' locks in the same order, so concurrent batches (another
// replica's) wait for each other but never deadlock, and a second change
// of an order sees the first's result. The events are written after every
// row (see insertEvent), in one statement.
func (s *Store) applyGuarded(ctx context.Context, op string, gs []guarded) []tradeunit.ChangeResult {
	results := make([]tradeunit.ChangeResult, len(gs))
	if len(gs) == 0 {
		return results
	}
	byOrder := make([]int, len(gs))
	for i := range byOrder {
		byOrder[i] = i
	}
	slices.SortStableFunc(byOrder, func(a, b int) int { return strings.Compare(gs[a].orderNo, gs[b].orderNo) })
	var events []outboxRow
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		clear(results) // the transaction may be retried
		events = events[:0]
		for _, i := range byOrder {
			g := gs[i]
			if g.invalid != nil {
				results[i].Err = g.invalid
				continue
			}
			o, changed, refused, err := s.applyOne(ctx, tx, g)
			if err != nil {
				return err
			}
			results[i] = tradeunit.ChangeResult{Order: o, Err: refused}
			if changed {
				events = append(events, outboxRow{typ: g.event, at: g.at, order: o})
			}
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	if err != nil {
		for i := range results {
			results[i] = tradeunit.ChangeResult{Err: err}
		}
	}
	return results
}

// applyOne runs g's guarded update in tx and returns the order as it
// stands after it: changed if the guard matched, or, if not, as its state
// explains (a repeat returns the order, a refusal is refused). err is a
// failure of the storage, which fails the transaction.
func (s *Store) applyOne(ctx context.Context, tx *sql.Tx, g guarded) (o *tradeunit.Order, changed bool, refused, err error) {
	res, err := tx.ExecContext(ctx, g.update, g.args...)
	if err != nil {
		return nil, false, nil, s.fail(g.op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, nil, s.fail(g.op, err)
	}
	if n == 1 {
		// The order as the update left it is the event's snapshot.
		o, err := s.queryOrder(ctx, tx, g.op, "order_no = ?", g.orderNo)
		return o, err == nil, nil, err
	}
	// The guard matched nothing. A locking read sees what the update saw
	// (on MySQL the latest committed row and this transaction's own
	// changes, not the transaction's snapshot).
	o, err = s.queryOrder(ctx, tx, g.op, "order_no = ?"+s.dialect.ForUpdate(), g.orderNo)
	switch {
	case tradeunit.IsCode(err, tradeunit.CodeNotFound):
		return nil, false, err, nil
	case err != nil:
		return nil, false, nil, err
	case o.Mchid != g.mchid:
		return nil, false, notFound("order", g.orderNo), nil
	}
	done, refused := g.check(o)
	switch {
	case refused != nil:
		return nil, false, refused, nil
	case !done:
		return nil, false, tradeunit.Internal(g.op, errGuardUnexplained), nil
	}
	return o, false, nil, nil
}
