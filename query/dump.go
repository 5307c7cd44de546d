package query

import (
	"context"
	"database/sql"

	"tradeunit"
)

// Refund is a stored refund: the event's copy and the order it refunds.
type Refund struct {
	tradeunit.EventRefund
	OrderNo string `json:"order_no"`
	Mchid   string `json:"mchid"`
}

// Reset empties every table (orders, refunds, watermarks, the caught-up
// mark), in one transaction, for a rebuild from scratch by replaying the
// bus. The schema stays. Errors: QUERY_STORE_UNAVAILABLE.
func (s *Store) Reset(ctx context.Context) error {
	return s.writeTx(ctx, "query.Reset", func(tx *sql.Tx) error {
		for _, table := range []string{"orders", "refunds", "watermarks", "caught_up"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
				return err
			}
		}
		return nil
	})
}

// Dump returns every order by order number and every refund by refund id,
// read from one snapshot: two stores fed the same events dump equal.
// Errors: QUERY_STORE_UNAVAILABLE.
func (s *Store) Dump(ctx context.Context) (orders []tradeunit.EventOrder, refunds []Refund, err error) {
	err = s.readTx(ctx, "query.Dump", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+orderColumns+" FROM orders ORDER BY order_no")
		if err != nil {
			return err
		}
		if orders, err = scanOrders(rows); err != nil {
			return err
		}
		refunds = []Refund{}
		return each(ctx, tx, `SELECT refund_id, out_refund_no, amount, currency, reason, create_time, order_no, mchid
			FROM refunds ORDER BY refund_id`, nil, func(rows *sql.Rows) error {
			var r Refund
			var t int64
			if err := rows.Scan(&r.RefundID, &r.OutRefundNo, &r.Amount, &r.Currency, &r.Reason, &t, &r.OrderNo, &r.Mchid); err != nil {
				return err
			}
			r.CreateTime = tradeunit.FromUnixMicros(t)
			refunds = append(refunds, r)
			return nil
		})
	})
	return orders, refunds, err
}
