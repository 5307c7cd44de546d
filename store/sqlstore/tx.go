package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

// inTx runs fn in a write transaction (see sqldb.DB.InTx: contention is
// retried, and only COMMIT can leave the outcome unknown).
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.db.InTx(ctx, op, fn)
}

// insertEvent writes one outbox row in the caller's transaction.
func insertEvent(ctx context.Context, tx *sql.Tx, orderNo string, typ tradeunit.EventType, at time.Time, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx,
		"INSERT INTO order_events (order_no, event_type, payload, create_time) VALUES (?, ?, ?, ?)",
		orderNo, string(typ), string(body), tradeunit.UnixMicros(at))
	return err
}

// Events returns outbox events after afterID, oldest first.
func (s *Store) Events(ctx context.Context, afterID int64, limit int) ([]tradeunit.Event, error) {
	rows, err := s.read.QueryContext(ctx,
		"SELECT id, order_no, event_type, payload, create_time FROM order_events WHERE id > ? ORDER BY id LIMIT ?",
		afterID, limit)
	if err != nil {
		return nil, s.fail("store.Events", err)
	}
	defer rows.Close()
	var out []tradeunit.Event
	for rows.Next() {
		var (
			e  tradeunit.Event
			at int64
		)
		if err := rows.Scan(&e.ID, &e.OrderNo, &e.Type, &e.Payload, &at); err != nil {
			return nil, s.fail("store.Events", err)
		}
		e.Time = tradeunit.FromUnixMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("store.Events", err)
	}
	return out, nil
}

// AllocateSequence reserves n order sequence numbers. The row update takes
// the row's write lock, so concurrent allocators — other replicas of the
// unit included — get disjoint blocks.
func (s *Store) AllocateSequence(ctx context.Context, n int64) (int64, error) {
	if n < 1 {
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "sequence block size must be positive, got %d", n)
	}
	var next int64
	err := s.inTx(ctx, "store.AllocateSequence", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE sequences SET next_value = next_value + ? WHERE name = 'order'", n); err != nil {
			return s.fail("store.AllocateSequence", err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT next_value FROM sequences WHERE name = 'order'").Scan(&next); err != nil {
			return s.fail("store.AllocateSequence", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return next - n, nil
}

func notFound(what, key string) error {
	return tradeunit.Errorf(tradeunit.CodeNotFound, "%s %s does not exist", what, key)
}

// isNoRows reports a missing row.
func isNoRows(err error) bool { return sqldb.IsNoRows(err) }
