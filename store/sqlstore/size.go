package sqlstore

import (
	"context"
	"database/sql"

	"tradeunit"
)

// StoreSize is how much data a storage holds.
type StoreSize struct {
	Tables      []TableSize
	Rows, Bytes int64 // all tables together
}

// TableSize is one table's part of a StoreSize.
type TableSize struct {
	Name string
	Rows int64 // exact, when read
	// Bytes is approximate: the table's and its indexes' pages as the
	// storage accounts them (MySQL's table statistics, SQLite's dbstat).
	Bytes int64
}

// Size returns the rows and the approximate bytes of each of the unit's
// data tables (those Sync copies): for a dry run of a move and its ETA.
func (s *Store) Size(ctx context.Context) (StoreSize, error) {
	const op = "store.Size"
	var size StoreSize
	for _, t := range dataTables {
		ts := TableSize{Name: t.name}
		if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name).Scan(&ts.Rows); err != nil {
			return size, s.fail(op, err)
		}
		var bytes sql.NullInt64
		// SQLite: the pages of the table and of its indexes.
		q := "SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name = ?)"
		if s.dialect.Name() == "mysql" {
			q = "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
		}
		if err := s.read.QueryRowContext(ctx, q, t.name).Scan(&bytes); err != nil && !isNoRows(err) {
			return size, s.fail(op, err)
		}
		ts.Bytes = bytes.Int64
		size.Tables = append(size.Tables, ts)
		size.Rows += ts.Rows
		size.Bytes += ts.Bytes
	}
	return size, nil
}

// DeleteData deletes every row of every data table, batch rows per
// transaction, calling progress (if set) with the rows deleted so far: the
// old storage's retirement once the copy has taken over. It leaves the
// schema and unit_lifecycle, and deletes unit_identity last, so that a
// storage half deleted still names its unit. It refuses a storage that is
// not frozen (INVALID_REQUEST): only a storage the unit has left may be
// emptied, and a frozen one takes no writes that could race the deletes.
// Run again after a failure, it deletes what is left.
func (s *Store) DeleteData(ctx context.Context, batch int, progress func(deleted int64)) error {
	const op = "store.DeleteData"
	if batch < 1 {
		return tradeunit.Errorf(tradeunit.CodeParamError, "delete data: batch must be positive, got %d", batch)
	}
	frozen, _, err := s.Frozen(ctx)
	if err != nil {
		return err
	}
	if !frozen {
		return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: op,
			Message: "the storage is not frozen: freeze it (and move the unit off it) before deleting its data"}
	}
	var deleted int64
	// Children before parents (refunds reference orders), the identity
	// last.
	for i := len(dataTables) - 1; i >= 0; i-- {
		t := dataTables[i]
		for done := false; !done; {
			var batchDeleted int64
			// Not fenced: the storage is frozen, and these are the
			// retirement's own writes.
			err := s.db.InTx(ctx, op, func(tx *sql.Tx) error {
				hi, err := t.boundary(ctx, tx, nil, batch)
				if err != nil {
					return s.fail(op, err)
				}
				done = hi == nil
				cond, args := t.rangeCond(nil, hi)
				res, err := tx.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE "+cond, args...)
				if err != nil {
					return s.fail(op, err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return s.fail(op, err)
				}
				batchDeleted = n
				return nil
			})
			if err != nil {
				return err
			}
			deleted += batchDeleted
			if progress != nil {
				progress(deleted)
			}
		}
	}
	return nil
}
