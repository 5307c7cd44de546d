package dirstore

import (
	"context"
	"database/sql"
	"errors"
)

// prepared holds the statements Put runs most, prepared once on the write
// pool. It is used on SQLite only: parsing was a quarter of the CPU of a
// batched Put there, and the pool's one connection keeps each statement
// prepared. On MySQL the driver interpolates arguments instead
// (interpolateParams: one round trip per statement), where a prepared
// statement would cost a round trip more, and inserts go many rows to a
// statement.
type prepared struct {
	insert, update, sel *sql.Stmt
	// entry is Entry's read, on the read pool: a statement of a pool is
	// prepared once on each of its connections, which it keeps open.
	entry *sql.Stmt
}

// prepare prepares the statements on db, which must not be in use by the
// caller (SQLite's write pool has one connection), and Entry's on read.
func prepare(ctx context.Context, db, read *sql.DB) (*prepared, error) {
	insert, err := db.PrepareContext(ctx, insertOne)
	if err != nil {
		return nil, err
	}
	update, err := db.PrepareContext(ctx, updateEntry)
	if err != nil {
		insert.Close()
		return nil, err
	}
	sel, err := db.PrepareContext(ctx, selectEntry)
	if err != nil {
		insert.Close()
		update.Close()
		return nil, err
	}
	entry, err := read.PrepareContext(ctx, selectEntry)
	if err != nil {
		insert.Close()
		update.Close()
		sel.Close()
		return nil, err
	}
	return &prepared{insert: insert, update: update, sel: sel, entry: entry}, nil
}

// exec runs st (nil: query, not prepared) in tx.
func exec(ctx context.Context, tx *sql.Tx, st *sql.Stmt, query string, args ...any) (sql.Result, error) {
	if st == nil {
		return tx.ExecContext(ctx, query, args...)
	}
	// st was prepared on the pool's one connection, which is tx's:
	// database/sql reuses it rather than preparing it again.
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (p *prepared) insertStmt() *sql.Stmt {
	if p == nil {
		return nil
	}
	return p.insert
}

func (p *prepared) updateStmt() *sql.Stmt {
	if p == nil {
		return nil
	}
	return p.update
}

func (p *prepared) close() error {
	if p == nil {
		return nil
	}
	return errors.Join(p.insert.Close(), p.update.Close(), p.sel.Close(), p.entry.Close())
}
