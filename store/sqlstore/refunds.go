package sqlstore

import (
	"context"
	"strconv"

	"tradeunit"
)

// CreateRefund adds a refund to a paid order: a batch of one (see
// CreateRefunds).
func (s *Store) CreateRefund(ctx context.Context, r *tradeunit.Refund) (*tradeunit.Refund, bool, error) {
	res := s.CreateRefunds(ctx, []*tradeunit.Refund{r})[0]
	return res.Stored, res.Created, res.Err
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
	r, _, err := scanRefund(s.reads.queryRow(ctx, s.read, "SELECT "+refundColumns+" FROM refunds WHERE mchid = ? AND out_refund_no = ?",
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
