package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"tradeunit"
)

// Activity is what a unit's storage says of its size and traffic: what the
// lifecycle controller (package lifecycle) decides a unit's temperature by.
// The health checker's probe orders are left out of every figure, since
// they are created in every unit all the time and say nothing of its
// merchants' traffic.
type Activity struct {
	Orders int64 // orders held
	// Oldest is the smallest order number, "" for none. Within one unit
	// order numbers sort by creation time (see package orderno), so it is
	// the oldest order's.
	Oldest string
	// EventsSince counts the outbox events (one per state change of an
	// order) created at or after the time Activity was given.
	EventsSince int64
	// Bytes is the storage's approximate size: SQLite's pages, or the
	// data and indexes MySQL's information_schema reports for the
	// database (an estimate InnoDB refreshes now and then).
	Bytes int64
}

// Activity reads the unit's figures in one read transaction. It is cheap
// at the sizes a unit is kept to (a count of the orders, a count of the
// recent events, the first order number by its index) and needs no write,
// so it works on a store opened with OpenReadOnly.
func (s *Store) Activity(ctx context.Context, since time.Time) (Activity, error) {
	const op = "store.Activity"
	var a Activity
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.dialect.Name() == "mysql"})
	if err != nil {
		return a, s.fail(op, err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE mchid <> ?", tradeunit.ProbeMchid).Scan(&a.Orders); err != nil {
		return a, s.fail(op, err)
	}
	// By the primary key's order: the first rows are read until one is
	// not a probe's (the checker deletes its old probe orders, so few).
	err = tx.QueryRowContext(ctx, "SELECT order_no FROM orders WHERE mchid <> ? ORDER BY order_no LIMIT 1",
		tradeunit.ProbeMchid).Scan(&a.Oldest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return a, s.fail(op, err)
	}
	// An event of a probe order is left out through its order; the
	// events of probe orders already deleted were deleted with them.
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM order_events e WHERE e.create_time >= ?
		AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_no = e.order_no AND o.mchid = ?)`,
		tradeunit.UnixMicros(since), tradeunit.ProbeMchid).Scan(&a.EventsSince)
	if err != nil {
		return a, s.fail(op, err)
	}
	size := "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
	if s.dialect.Name() == "mysql" {
		size = "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.TABLES WHERE table_schema = DATABASE()"
	}
	if err := tx.QueryRowContext(ctx, size).Scan(&a.Bytes); err != nil {
		return a, s.fail(op, err)
	}
	return a, nil
}
