package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"tradeunit"
)

// CreateRefund adds a refund to a paid order in one transaction: the guarded
// update of the order's refunded sum (it never exceeds the total, whatever
// runs concurrently), the refund row, and the REFUND_CREATED event.
func (s *Store) CreateRefund(ctx context.Context, r *tradeunit.Refund) (*tradeunit.Refund, bool, error) {
	const op = "store.CreateRefund"
	var stored *tradeunit.Refund
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE orders SET refunded = refunded + ?, trade_state = 'REFUND',
			update_time = ?, version = version + 1
			WHERE order_no = ? AND mchid = ? AND currency = ? AND trade_state IN ('SUCCESS', 'REFUND')
			  AND refunded + ? <= total`,
			r.Amount.Refund, tradeunit.UnixMicros(r.CreateTime), r.OrderNo, r.Mchid, r.Amount.Currency, r.Amount.Refund)
		if err != nil {
			return s.fail(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(op, err)
		} else if n != 1 {
			return errGuard
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO refunds (mchid, out_refund_no, order_no, amount, currency, reason,
			status, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Mchid, r.OutRefundNo, r.OrderNo, r.Amount.Refund, r.Amount.Currency, r.Reason,
			string(tradeunit.RefundSuccess), tradeunit.UnixMicros(r.CreateTime))
		if err != nil {
			if s.dialect.IsUniqueViolation(err) {
				return errDuplicate
			}
			return s.fail(op, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return s.fail(op, err)
		}
		stored = storedRefund(r, id)
		// The order as the update left it is the event's snapshot; the
		// event goes in after the update (see insertEvent).
		o, err := s.queryOrder(ctx, tx, op, "order_no = ?", r.OrderNo)
		if err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, tradeunit.EventRefundCreated, r.CreateTime, o, stored); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	switch {
	case err == nil:
		return stored, true, nil
	case errors.Is(err, errDuplicate):
		existing, err := s.Refund(ctx, r.Mchid, r.OutRefundNo)
		return existing, false, err
	case errors.Is(err, errGuard):
		// Either the refund was already made (a repeat: return it) or the
		// order's state or sum forbids it (say why).
		if existing, err := s.Refund(ctx, r.Mchid, r.OutRefundNo); err == nil {
			return existing, false, nil
		}
		o, err := s.queryOrder(ctx, s.write, op, "order_no = ?", r.OrderNo)
		if err != nil {
			return nil, false, err
		}
		if o.Mchid != r.Mchid {
			return nil, false, notFound("order", r.OrderNo)
		}
		if err := o.CheckRefund(r.Amount); err != nil {
			return nil, false, err
		}
		return nil, false, tradeunit.Internal(op, errGuardUnexplained)
	default:
		return nil, false, err
	}
}

// storedRefund is r as stored with row id id.
func storedRefund(r *tradeunit.Refund, id int64) *tradeunit.Refund {
	stored := *r
	stored.RefundID = refundID(r.OrderNo, id)
	stored.Status = tradeunit.RefundSuccess
	stored.CreateTime = tradeunit.FromUnixMicros(tradeunit.UnixMicros(r.CreateTime))
	return &stored
}

const refundColumns = "id, mchid, out_refund_no, order_no, amount, currency, reason, status, create_time"

// scanRefund reads a row of refundColumns, and returns its row id.
func scanRefund(row rowScanner) (*tradeunit.Refund, int64, error) {
	var (
		r      tradeunit.Refund
		id, at int64
		status string
	)
	if err := row.Scan(&id, &r.Mchid, &r.OutRefundNo, &r.OrderNo, &r.Amount.Refund, &r.Amount.Currency, &r.Reason, &status, &at); err != nil {
		return nil, 0, err
	}
	r.RefundID = refundID(r.OrderNo, id)
	r.Status = tradeunit.RefundStatus(status)
	r.CreateTime = tradeunit.FromUnixMicros(at)
	return &r, id, nil
}

// Refund returns a merchant's refund by its refund number.
func (s *Store) Refund(ctx context.Context, mchid, outRefundNo string) (*tradeunit.Refund, error) {
	r, _, err := scanRefund(s.read.QueryRowContext(ctx, "SELECT "+refundColumns+" FROM refunds WHERE mchid = ? AND out_refund_no = ?",
		mchid, outRefundNo))
	if isNoRows(err) {
		return nil, notFound("refund", outRefundNo)
	}
	if err != nil {
		return nil, s.fail("store.Refund", err)
	}
	return r, nil
}

// RefundsAfter returns refunds in the order they were stored, after the
// row id after.
func (s *Store) RefundsAfter(ctx context.Context, after int64, limit int) ([]*tradeunit.Refund, int64, error) {
	const op = "store.RefundsAfter"
	if limit < 1 {
		return nil, after, tradeunit.Errorf(tradeunit.CodeParamError, "limit must be positive, got %d", limit)
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+refundColumns+" FROM refunds WHERE id > ? AND mchid <> ? ORDER BY id LIMIT ?",
		after, tradeunit.ProbeMchid, limit)
	if err != nil {
		return nil, after, s.fail(op, err)
	}
	defer rows.Close()
	var out []*tradeunit.Refund
	for rows.Next() {
		r, id, err := scanRefund(rows)
		if err != nil {
			return nil, after, s.fail(op, err)
		}
		out, after = append(out, r), id
	}
	if err := rows.Err(); err != nil {
		return nil, after, s.fail(op, err)
	}
	return out, after, nil
}

// refundID names a refund by its order and its row in the unit, so that it
// is unique and, like the order number, tells which unit holds it.
func refundID(orderNo string, id int64) string {
	return orderNo + "-" + strconv.FormatInt(id, 10)
}
