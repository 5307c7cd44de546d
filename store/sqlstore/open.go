// Package sqlstore implements tradeunit.Store over database/sql, on SQLite
// (modernc.org/sqlite, pure Go: the embedded default) and on MySQL/MariaDB
// (go-sql-driver/mysql: production storage). One Store is one unit's storage:
// one SQLite file or one MySQL database.
//
// The two dialects share every query; they differ in how a connection is
// opened, how the schema is written and how a unique-key violation looks.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/internal/sqldb"
)

// LocalMySQL is the server of a development machine or CI: root with no
// password on the loopback port.
var LocalMySQL = dsn.MustParse("mysql:root@tcp(127.0.0.1:3306)/")

// Store is a unit's storage over database/sql.
type Store struct {
	db *sqldb.DB
	// write runs every transaction: on SQLite, one connection (see
	// sqldb.DB). read serves reads that need no transaction; on MySQL it
	// is write.
	write, read *sql.DB
	dialect     sqldb.Dialect
	// passedFence, when set, runs in each write transaction just after
	// the freeze fence let it through: tests hold a writer there. nil
	// outside tests; set it before the Store is shared.
	passedFence func(op string)
	// stmts caches the batch statements whose text depends on their
	// size: on a SQLite Store open for writes only, nil otherwise.
	stmts *stmtCache
	// reads holds the point reads prepared on SQLite's read pool; nil on
	// MySQL.
	reads *readStmts
}

var _ tradeunit.Store = (*Store)(nil)

func newStore(db *sqldb.DB) *Store {
	s := &Store{db: db, write: db.Write, read: db.Read, dialect: db.Dialect()}
	if s.dialect.Name() == "sqlite" {
		s.reads = newReadStmts(s.read)
	}
	return s
}

// Open opens (creating if needed) the storage named by d and applies the
// embedded schema migrations: one SQLite file per unit, or one MySQL
// database per unit, created if missing, connecting with the password
// passwords knows for d's user and server (nil: none).
func Open(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*Store, error) {
	if err := sqldb.CheckScheme(d); err != nil {
		return nil, err
	}
	db, err := sqldb.Open(ctx, d, passwords)
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", d, err)
	}
	if err := db.Migrate(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate storage %s: %w", d, err)
	}
	s := newStore(db)
	if s.dialect.Name() == "sqlite" {
		s.stmts = newStmtCache(s.write)
	}
	return s, nil
}

// OpenReadOnly opens the storage named by d for reads only: a replica of a
// unit's primary, or any unit's storage an operator's command reads. It
// neither creates the database nor migrates the schema (a replica gets both
// from its primary; a command that only reads must change nothing), and it
// does not connect until the first read; a SQLite file is opened read-only
// and must exist. The Store's changing methods fail.
func OpenReadOnly(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*Store, error) {
	if err := sqldb.CheckScheme(d); err != nil {
		return nil, err
	}
	db, err := sqldb.OpenReadOnly(ctx, d, passwords)
	if err != nil {
		return nil, fmt.Errorf("open %s read-only: %w", d, err)
	}
	return newStore(db), nil
}

// Ping checks that the storage answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx, "store.Ping") }

// Close closes the storage.
func (s *Store) Close() error { return errors.Join(s.stmts.close(), s.reads.close(), s.db.Close()) }

// ReadOnly reports whether the server refuses the application's writes now:
// @@global.read_only on MySQL (a fenced or not yet promoted server), always
// false on SQLite.
func (s *Store) ReadOnly(ctx context.Context) (bool, error) {
	return s.db.ReadOnly(ctx, "store.ReadOnly")
}

// fail classifies err, returned by any statement but COMMIT (see sqldb's
// faults).
func (s *Store) fail(op string, err error) error { return s.db.Fail(op, err) }
