package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"tradeunit"
)

// The freeze fence. A unit's storage moves to other ("cold") storage while
// it serves: Sync copies it, then writes are paused (Freeze), the copy is
// brought exactly up to date and verified, and the unit is pointed at the
// copy. The pause must be a fence, not a hint: once Freeze has returned, no
// write may commit on the old storage, or the copy would miss it.
//
// Every write transaction reads the one row of unit_lifecycle first
// (checkNotFrozen, called by inTx) and fails when it is frozen. On MySQL
// the read takes a shared lock held to the end of the transaction, and
// Freeze's UPDATE needs the exclusive lock: it waits for every write
// transaction that read "not frozen", and every one that asks after it
// waits for Freeze and then reads "frozen". On SQLite a plain read is
// enough: write transactions begin IMMEDIATE (sqldb.openSQLite), so they
// hold the database's one write lock from BEGIN to COMMIT, across
// connections and processes, and Freeze's UPDATE needs that lock too.

// frozenRead is the fence's read; on MySQL it takes a shared lock.
const frozenRead = "SELECT frozen FROM unit_lifecycle WHERE id = 1"

// errNoLifecycleRow: the storage lacks the fence's row (migration 0005
// inserts it), so it cannot be frozen.
var errNoLifecycleRow = errors.New("unit_lifecycle has no row: the storage cannot be frozen")

// checkNotFrozen fails a write transaction, before it writes anything, if
// the storage is frozen.
func (s *Store) checkNotFrozen(ctx context.Context, tx *sql.Tx, op string) error {
	q := frozenRead
	if s.dialect.Name() == "mysql" {
		q += " LOCK IN SHARE MODE"
	}
	var frozen int64
	err := s.stmts.queryRowFixed(ctx, tx, q).Scan(&frozen)
	switch {
	case isNoRows(err):
		// Migration 0005 inserts the row; a storage without it was
		// never frozen.
		return nil
	case err != nil:
		return s.fail(op, err)
	case frozen != 0:
		return frozenError(op)
	}
	return nil
}

// frozenError is the error of a write refused by the fence.
func frozenError(op string) error {
	return &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: op, Err: tradeunit.ErrStorageFrozen,
		Message: "the unit's storage is frozen while it moves to cold storage; nothing was written"}
}

// Freeze stops every write to the storage: from when it returns until
// Unfreeze, each of the Store's write transactions — on this handle and on
// every other one open on the same storage — fails with
// tradeunit.ErrStorageFrozen (UNIT_UNAVAILABLE) before writing anything.
// Reads go on. Freeze is idempotent and keeps the time of the first freeze.
//
// The guarantee: when Freeze returns nil, every write transaction that had
// passed the fence has committed or rolled back, and none can commit on the
// storage any more. On MySQL the UPDATE waits for the shared locks of the
// write transactions in flight (at most innodb_lock_wait_timeout; a
// timeout is retried, then returned); on SQLite it waits for the write lock.
// Sync, DeleteData and the storage's own migrations are not fenced.
func (s *Store) Freeze(ctx context.Context) error {
	const op = "store.Freeze"
	now := tradeunit.UnixMicros(time.Now())
	return s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		// The UPDATE locks the row whether or not it changes it, so a
		// repeated Freeze waits for the same writers as the first.
		_, err := tx.ExecContext(ctx,
			"UPDATE unit_lifecycle SET frozen_at = CASE WHEN frozen = 1 THEN frozen_at ELSE ? END, frozen = 1 WHERE id = 1", now)
		if err != nil {
			return s.fail(op, err)
		}
		return s.lifecycleRow(ctx, tx, op)
	})
}

// Unfreeze lets writes through again (after a move that was abandoned, or
// on the copy if it was frozen). It is idempotent.
func (s *Store) Unfreeze(ctx context.Context) error {
	const op = "store.Unfreeze"
	return s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE unit_lifecycle SET frozen = 0, frozen_at = 0 WHERE id = 1"); err != nil {
			return s.fail(op, err)
		}
		return s.lifecycleRow(ctx, tx, op)
	})
}

// lifecycleRow checks that the fence's row exists: an UPDATE of a missing
// row would succeed and fence nothing.
func (s *Store) lifecycleRow(ctx context.Context, tx *sql.Tx, op string) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM unit_lifecycle WHERE id = 1").Scan(&n); err != nil {
		return s.fail(op, err)
	}
	if n != 1 {
		return tradeunit.Internal(op, errNoLifecycleRow)
	}
	return nil
}

// Frozen reports whether the storage is frozen, and since when (the zero
// time if it is not).
func (s *Store) Frozen(ctx context.Context) (bool, time.Time, error) {
	const op = "store.Frozen"
	var frozen, at int64
	err := s.read.QueryRowContext(ctx, "SELECT frozen, frozen_at FROM unit_lifecycle WHERE id = 1").Scan(&frozen, &at)
	switch {
	case isNoRows(err):
		return false, time.Time{}, nil
	case err != nil:
		return false, time.Time{}, s.fail(op, err)
	case frozen == 0:
		return false, time.Time{}, nil
	}
	return true, tradeunit.FromUnixMicros(at), nil
}
