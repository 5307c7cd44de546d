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
// left, or why its guard matched nothing. The updates run in order-number
// order, two of one order in their batch order: every transaction takes
// the rows' locks in the same order, so concurrent batches (another
// replica's) wait for each other but never deadlock.
//
// Then one read of every order of the batch explains all the updates:
// every change starts from NOTPAY, so of an order's changes in a batch at
// most the first that matches its merchant is made, and the state it
// leaves is the one each later change of the order would have seen alone.
// The events go in last (see insertEvent), in one statement. A batch costs
// one round trip per change and three more (the fence, the read, the
// events), where changes alone cost four each.
func (s *Store) applyGuarded(ctx context.Context, op string, gs []guarded) []tradeunit.ChangeResult {
	results := make([]tradeunit.ChangeResult, len(gs))
	if len(gs) == 0 {
		return results
	}
	byOrder := inOrderNoOrder(len(gs), func(i int) string { return gs[i].orderNo })
	matched := make([]bool, len(gs))
	var events []outboxRow
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		clear(results) // the transaction may be retried
		clear(matched)
		events = events[:0]
		var orderNos []string
		for _, i := range byOrder {
			g := gs[i]
			if g.invalid != nil {
				continue
			}
			res, err := s.stmts.execFixed(ctx, tx, g.update, g.args...)
			if err != nil {
				return s.fail(g.op, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return s.fail(g.op, err)
			}
			matched[i] = n == 1
			if len(orderNos) == 0 || orderNos[len(orderNos)-1] != g.orderNo {
				orderNos = append(orderNos, g.orderNo)
			}
		}
		stored, err := s.lockedOrders(ctx, tx, op, orderNos)
		if err != nil {
			return err
		}
		for _, i := range byOrder {
			g := gs[i]
			// Each answer its own copy: two changes of an order share
			// its row, and their callers may each change what they get.
			o := copyOrder(stored[g.orderNo])
			switch {
			case g.invalid != nil:
				results[i].Err = g.invalid
			case matched[i]:
				// The order as the update left it is the event's snapshot.
				results[i].Order = o
				events = append(events, outboxRow{typ: g.event, at: g.at, order: o})
			default:
				results[i] = explainGuard(g, o)
			}
		}
		if err := s.insertEvents(ctx, tx, events); err != nil {
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

// lockedOrders reads the orders of orderNos in tx, by number, with a
// locking read: on MySQL it sees the latest committed rows and the
// transaction's own changes, as the updates did, not the transaction's
// snapshot. A missing order is missing from the map.
func (s *Store) lockedOrders(ctx context.Context, tx *sql.Tx, op string, orderNos []string) (map[string]*tradeunit.Order, error) {
	out := make(map[string]*tradeunit.Order, len(orderNos))
	if len(orderNos) == 0 {
		return out, nil
	}
	args := make([]any, len(orderNos))
	for i, no := range orderNos {
		args[i] = no
	}
	q := func() string {
		return "SELECT " + orderColumns + " FROM orders WHERE order_no IN (?" + strings.Repeat(", ?", len(orderNos)-1) + ")" + s.dialect.ForUpdate()
	}
	rows, err := s.stmts.query(ctx, tx, stmtKey{kind: stmtLockedOrders, rows: len(orderNos)}, q, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out[o.OrderNo] = o
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// explainGuard answers a change whose guard matched nothing from its
// order as it stands (nil: there is none): a repeat returns the order, a
// refusal says why.
func explainGuard(g guarded, o *tradeunit.Order) tradeunit.ChangeResult {
	if o == nil || o.Mchid != g.mchid {
		return tradeunit.ChangeResult{Err: notFound("order", g.orderNo)}
	}
	switch done, err := g.check(o); {
	case err != nil:
		return tradeunit.ChangeResult{Err: err}
	case !done:
		return tradeunit.ChangeResult{Err: tradeunit.Internal(g.op, errGuardUnexplained)}
	}
	return tradeunit.ChangeResult{Order: o}
}

func copyOrder(o *tradeunit.Order) *tradeunit.Order {
	if o == nil {
		return nil
	}
	c := *o
	c.AbandonedUnits = slices.Clone(o.AbandonedUnits)
	return &c
}

// inOrderNoOrder returns the indexes 0..n-1 of a batch sorted by the order
// number orderNo gives each, those of one order in their batch order: the
// order a batch takes its rows' locks in.
func inOrderNoOrder(n int, orderNo func(i int) string) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(orderNo(a), orderNo(b)) })
	return idx
}
