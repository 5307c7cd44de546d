package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
)

// Sync's writes to the copy: a range replaced, an id counter raised.

// insertChunk bounds the rows of one INSERT: 100 orders are 1,700
// arguments and some hundred kilobytes of events, far from either
// dialect's limits.
const insertChunk = 100

// replaceRange deletes the key range (lo, hi] of t and inserts rows, in one
// transaction on a connection of its own that checks no foreign keys.
func (s *Store) replaceRange(ctx context.Context, t table, lo, hi []any, rows [][]any) error {
	cond, args := t.rangeCond(lo, hi)
	return s.replaceWhere(ctx, t, cond, args, rows)
}

// replaceWhere deletes the rows of t that match cond and inserts rows, as
// replaceRange.
func (s *Store) replaceWhere(ctx context.Context, t table, cond string, args []any, rows [][]any) error {
	const op = "store.Sync"
	return s.withoutForeignKeys(ctx, op, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return s.fail(op, err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE "+cond, args...); err != nil {
			return s.fail(op, err)
		}
		one := "(?" + strings.Repeat(", ?", len(t.cols)-1) + ")"
		for len(rows) > 0 {
			chunk := rows[:min(insertChunk, len(rows))]
			rows = rows[len(chunk):]
			var q strings.Builder
			q.WriteString("INSERT INTO " + t.name + " (" + colList(t.cols) + ") VALUES ")
			args := make([]any, 0, len(chunk)*len(t.cols))
			for i, r := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString(one)
				for _, v := range r {
					args = append(args, s.arg(v))
				}
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return s.fail(op, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return s.dialect.StorageError(op, err, true)
		}
		return nil
	})
}

// arg is a canonical value as a statement argument.
func (s *Store) arg(v any) driver.Value {
	if u, ok := v.(uint64); ok {
		return s.dialect.Uint64(u)
	}
	return v
}

// withoutForeignKeys runs fn on a write connection whose foreign-key checks
// are off, and turns them on again before the connection goes back to the
// pool; a connection that cannot is discarded. Both switches are
// per-connection, and SQLite's is ignored inside a transaction, so fn
// begins its own.
func (s *Store) withoutForeignKeys(ctx context.Context, op string, fn func(conn *sql.Conn) error) error {
	off, on := "SET SESSION foreign_key_checks = 0", "SET SESSION foreign_key_checks = 1"
	if s.dialect.Name() == "sqlite" {
		off, on = "PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, off); err != nil {
		return s.fail(op, err)
	}
	err = fn(conn)
	if _, onErr := conn.ExecContext(context.WithoutCancel(ctx), on); onErr != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		err = errors.Join(err, s.fail(op, onErr))
	}
	return err
}

// counter raises dst's AUTOINCREMENT counter of t to src's.
func (sy *syncer) counter(ctx context.Context, t table, ts *TableSync) error {
	srcNext, err := sy.src.nextID(ctx, t)
	if err != nil {
		return err
	}
	dstNext, err := sy.dst.nextID(ctx, t)
	if err != nil {
		return err
	}
	ts.NextID = srcNext
	if dstNext >= srcNext {
		return nil
	}
	sy.rep.CountersDiffering++
	if sy.opt.VerifyOnly {
		return nil
	}
	return sy.dst.setNextID(ctx, t, srcNext)
}

// nextID is the id t's next insert would get at least: past its
// AUTOINCREMENT counter and past its largest id.
func (s *Store) nextID(ctx context.Context, t table) (int64, error) {
	const op = "store.Sync"
	var maxID, counter sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT MAX(id) FROM "+t.name).Scan(&maxID); err != nil {
		return 0, s.fail(op, err)
	}
	q := "SELECT seq + 1 FROM sqlite_sequence WHERE name = ?"
	if s.dialect.Name() == "mysql" {
		// MariaDB reads it from the engine. MySQL 8 caches it for
		// information_schema_stats_expiry; its counter may read low
		// there, never high, and Sync then raises dst's needlessly.
		q = "SELECT AUTO_INCREMENT FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	}
	err := s.read.QueryRowContext(ctx, q, t.name).Scan(&counter)
	if err != nil && !isNoRows(err) {
		return 0, s.fail(op, err)
	}
	return max(maxID.Int64+1, counter.Int64, 1), nil
}

// setNextID makes next the id t's next insert gets at least.
func (s *Store) setNextID(ctx context.Context, t table, next int64) error {
	const op = "store.Sync"
	if s.dialect.Name() == "mysql" {
		// DDL, and it cannot take an argument: next is an integer.
		if _, err := s.write.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", t.name, next)); err != nil {
			return s.fail(op, err)
		}
		return nil
	}
	// Not fenced: the copy's own bookkeeping (see Sync).
	return s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?", next-1, t.name, next-1)
		if err != nil {
			return s.fail(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(op, err)
		} else if n == 1 {
			return nil
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
			t.name, next-1, t.name)
		if err != nil {
			return s.fail(op, err)
		}
		return nil
	})
}
