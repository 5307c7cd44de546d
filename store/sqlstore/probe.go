package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"tradeunit"
)

// DeleteProbeOrders deletes up to limit of the probe merchant's orders
// created before createdBefore, with their events and refunds, in one
// transaction. It selects the numbers first and deletes by number, because
// SQLite has no DELETE ... LIMIT and MySQL none with a join.
func (s *Store) DeleteProbeOrders(ctx context.Context, createdBefore time.Time, limit int) (int, error) {
	const op = "store.DeleteProbeOrders"
	if limit < 1 {
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "delete probe orders: limit must be positive, got %d", limit)
	}
	var deleted int
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			"SELECT order_no FROM orders WHERE mchid = ? AND create_time < ? ORDER BY create_time LIMIT ?",
			tradeunit.ProbeMchid, tradeunit.UnixMicros(createdBefore), limit)
		if err != nil {
			return s.fail(op, err)
		}
		var nos []any
		for rows.Next() {
			var no string
			if err := rows.Scan(&no); err != nil {
				rows.Close()
				return s.fail(op, err)
			}
			nos = append(nos, no)
		}
		if err := rows.Close(); err != nil {
			return s.fail(op, err)
		}
		if err := rows.Err(); err != nil {
			return s.fail(op, err)
		}
		if len(nos) == 0 {
			return nil
		}
		in := "(?" + strings.Repeat(", ?", len(nos)-1) + ")"
		// Children first: refunds reference their order.
		for _, table := range []string{"refunds", "order_events"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE order_no IN "+in, nos...); err != nil {
				return s.fail(op, err)
			}
		}
		// The merchant guard is repeated so that no other merchant's order can
		// be deleted whatever the list holds.
		args := append([]any{tradeunit.ProbeMchid}, nos...)
		res, err := tx.ExecContext(ctx, "DELETE FROM orders WHERE mchid = ? AND order_no IN "+in, args...)
		if err != nil {
			return s.fail(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.fail(op, err)
		}
		deleted = int(n)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}
