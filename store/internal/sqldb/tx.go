package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// txAttempts bounds how often a transaction that lost a deadlock or lock
// wait is run again before its error reaches the caller.
const txAttempts = 3

// InTx runs fn in a write transaction and commits if fn returns nil. A
// transaction the storage aborted for contention (a deadlock, a lock wait
// timeout, SQLite busy) is run again: contention is not a fault of the
// storage, and a create that failed for it would be retried on another unit
// with an outcome it need not leave unknown. fn may run more than once, so
// it must start from scratch each time (reset what it collects).
func (db *DB) InTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.TryTx(ctx, op, fn)
		if err == nil || attempt == txAttempts || ctx.Err() != nil || !db.dialect.isContention(err) {
			return err
		}
		time.Sleep(time.Duration(attempt) * 2 * time.Millisecond)
	}
}

// TryTx runs fn in one transaction. Its errors follow faults: a failure
// to begin, and any failure of fn's statements (fn classifies them with
// Fail), leave nothing written, since the transaction never committed;
// only a failure of COMMIT itself can leave the outcome unknown.
func (db *DB) TryTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return db.Fail(op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if db.BeforeCommit != nil {
		db.BeforeCommit()
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			// database/sql rolled the transaction back for the context
			// before COMMIT was sent.
			err = ctx.Err()
		}
		return db.dialect.StorageError(op, err, true)
	}
	return nil
}

// IsNoRows reports a missing row.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
