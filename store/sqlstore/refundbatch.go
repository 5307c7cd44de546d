package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"tradeunit"
)

// CreateRefunds adds refunds to paid orders in one transaction; see
// tradeunit.Store. Each refund is the guarded update of its order's
// refunded sum (it never exceeds the total, whatever runs concurrently),
// its refund row and its REFUND_CREATED event. They run in order-number
// order, as changes do (see applyGuarded: concurrent batches never
// deadlock), and two of one order in their batch order, so that a refund
// sees the ones of its order before it in the batch. A refund whose number
// is taken is undone to a savepoint taken before its update: the update
// went through, so only the savepoint can take it back without failing
// the batch.
func (s *Store) CreateRefunds(ctx context.Context, refunds []*tradeunit.Refund) []tradeunit.RefundResult {
	const op = "store.CreateRefund"
	results := make([]tradeunit.RefundResult, len(refunds))
	if len(refunds) == 0 {
		return results
	}
	byOrder := inOrderNoOrder(len(refunds), func(i int) string { return refunds[i].OrderNo })
	var events []outboxRow
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		clear(results) // the transaction may be retried
		events = events[:0]
		for _, i := range byOrder {
			r := refunds[i]
			res, o, err := s.refundOne(ctx, tx, r)
			if err != nil {
				return err
			}
			results[i] = res
			if res.Created {
				events = append(events, outboxRow{typ: tradeunit.EventRefundCreated, at: r.CreateTime, order: o, refund: res.Stored})
			}
		}
		// After every order's update: see insertEvent.
		if err := s.insertEvents(ctx, tx, events); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	if err != nil {
		for i := range results {
			results[i] = tradeunit.RefundResult{Err: err}
		}
	}
	return results
}

// refundOne makes refund r in tx and returns its result, with the order as
// the refund left it if it made it. err is a failure of the storage, which
// fails the transaction.
func (s *Store) refundOne(ctx context.Context, tx *sql.Tx, r *tradeunit.Refund) (tradeunit.RefundResult, *tradeunit.Order, error) {
	const op = "store.CreateRefund"
	if _, err := tx.ExecContext(ctx, "SAVEPOINT refund_row"); err != nil {
		return tradeunit.RefundResult{}, nil, s.fail(op, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET refunded = refunded + ?, trade_state = 'REFUND',
		update_time = ?, version = version + 1
		WHERE order_no = ? AND mchid = ? AND currency = ? AND trade_state IN ('SUCCESS', 'REFUND')
		  AND refunded + ? <= total`,
		r.Amount.Refund, tradeunit.UnixMicros(r.CreateTime), r.OrderNo, r.Mchid, r.Amount.Currency, r.Amount.Refund)
	if err != nil {
		return tradeunit.RefundResult{}, nil, s.fail(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return tradeunit.RefundResult{}, nil, s.fail(op, err)
	} else if n != 1 {
		return s.explainRefund(ctx, tx, r)
	}
	res, err = tx.ExecContext(ctx, `INSERT INTO refunds (mchid, out_refund_no, order_no, amount, currency, reason,
		status, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Mchid, r.OutRefundNo, r.OrderNo, r.Amount.Refund, r.Amount.Currency, r.Reason,
		string(tradeunit.RefundSuccess), tradeunit.UnixMicros(r.CreateTime))
	if err != nil {
		if !s.dialect.IsUniqueViolation(err) {
			return tradeunit.RefundResult{}, nil, s.fail(op, err)
		}
		// The refund number is taken: a repeat, or another refund's.
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT refund_row"); err != nil {
			return tradeunit.RefundResult{}, nil, s.fail(op, err)
		}
		existing, err := s.lockedRefund(ctx, tx, r.Mchid, r.OutRefundNo)
		if err != nil {
			return tradeunit.RefundResult{}, nil, err
		}
		if existing == nil {
			return tradeunit.RefundResult{}, nil, tradeunit.Internal(op, errors.New("a refund number was taken, and no refund has it"))
		}
		return tradeunit.RefundResult{Stored: existing}, nil, nil
	}
	id, err := res.LastInsertId()
	if err != nil {
		return tradeunit.RefundResult{}, nil, s.fail(op, err)
	}
	// The order as the update left it is the event's snapshot.
	o, err := s.queryOrder(ctx, tx, op, "order_no = ?", r.OrderNo)
	if err != nil {
		return tradeunit.RefundResult{}, nil, err
	}
	return tradeunit.RefundResult{Stored: storedRefund(r, id), Created: true}, o, nil
}

// explainRefund answers a refund whose guard matched nothing, from what tx
// sees now: the refund made already (a repeat: return it), or the order's
// state or sum that forbids it (say why). Its reads lock, so that on MySQL
// they see what the update saw, not the transaction's snapshot.
func (s *Store) explainRefund(ctx context.Context, tx *sql.Tx, r *tradeunit.Refund) (tradeunit.RefundResult, *tradeunit.Order, error) {
	const op = "store.CreateRefund"
	existing, err := s.lockedRefund(ctx, tx, r.Mchid, r.OutRefundNo)
	if err != nil || existing != nil {
		return tradeunit.RefundResult{Stored: existing}, nil, err
	}
	o, err := s.queryOrder(ctx, tx, op, "order_no = ?"+s.dialect.ForUpdate(), r.OrderNo)
	switch {
	case tradeunit.IsCode(err, tradeunit.CodeNotFound):
		return tradeunit.RefundResult{Err: err}, nil, nil
	case err != nil:
		return tradeunit.RefundResult{}, nil, err
	case o.Mchid != r.Mchid:
		return tradeunit.RefundResult{Err: notFound("order", r.OrderNo)}, nil, nil
	}
	if err := o.CheckRefund(r.Amount); err != nil {
		return tradeunit.RefundResult{Err: err}, nil, nil
	}
	return tradeunit.RefundResult{Err: tradeunit.Internal(op, errGuardUnexplained)}, nil, nil
}

// lockedRefund reads a merchant's refund in tx with a locking read; nil if
// there is none.
func (s *Store) lockedRefund(ctx context.Context, tx *sql.Tx, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	r, _, err := scanRefund(tx.QueryRowContext(ctx, "SELECT "+refundColumns+" FROM refunds WHERE mchid = ? AND out_refund_no = ?"+s.dialect.ForUpdate(),
		mchid, outRefundNo))
	switch {
	case isNoRows(err):
		return nil, nil
	case err != nil:
		return nil, s.fail("store.CreateRefund", err)
	}
	return r, nil
}
