package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"tradeunit"
)

// txAttempts bounds how often a transaction that lost a deadlock or lock
// wait is run again before its error reaches the caller.
const txAttempts = 3

// inTx runs fn in a write transaction and commits if fn returns nil. A
// transaction the storage aborted for contention (a deadlock, a lock wait
// timeout, SQLite busy) is run again: contention is not a fault of the unit,
// and a create that failed for it would be retried on another unit with an
// outcome it need not leave unknown.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, op, fn)
		if err == nil || attempt == txAttempts || ctx.Err() != nil || !s.dialect.isContention(err) {
			return err
		}
		time.Sleep(time.Duration(attempt) * 2 * time.Millisecond)
	}
}

// tryTx runs fn in one transaction. Its errors follow faults: a failure
// to begin, and any failure of fn's statements (fn classifies them with
// s.fail), leave nothing written, since the transaction never committed;
// only a failure of COMMIT itself can leave the outcome unknown.
func (s *Store) tryTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			// database/sql rolled the transaction back for the context
			// before COMMIT was sent.
			err = ctx.Err()
		}
		return s.dialect.storageError(op, err, true)
	}
	return nil
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
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
