// Package sqldb is what the stores over database/sql share: opening a
// storage named by a dsn.DSN on SQLite (modernc.org/sqlite) or MySQL/MariaDB
// (go-sql-driver/mysql) with the settings measured for it, the dialect
// differences, the classification of storage errors into the domain's codes,
// transactions with retries on contention, and embedded schema migrations.
//
// Its users are tradeunit/store/sqlstore (a unit's storage) and
// tradeunit/store/dirstore (a directory shard's); each owns its schema.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"tradeunit"
	"tradeunit/dsn"
)

// DB is one storage: a writer pool, a reader pool and the dialect.
type DB struct {
	// Write runs every transaction. On SQLite it has one connection: SQLite
	// has one writer at a time, and a pool of writers only burns CPU in its
	// busy-wait (MEASURED.md: p99.9 of seconds for no throughput gain).
	Write *sql.DB
	// Read serves reads that need no transaction; on MySQL it is Write.
	Read    *sql.DB
	dialect Dialect
	// BeforeCommit, when set, runs in TryTx between a transaction's last
	// statement and its COMMIT: fault tests cut the connection there. nil
	// outside tests; set it before the DB is shared.
	BeforeCommit func()
}

// Dialect returns the storage's dialect.
func (db *DB) Dialect() Dialect { return db.dialect }

// Open opens (creating if needed) the storage named by d, connecting with
// the password passwords knows for d's user and server (nil: none): a
// SQLite file, created if missing, or a MySQL database, created if missing.
// It does not migrate: see Migrate.
func Open(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*DB, error) {
	switch d.Scheme {
	case dsn.SQLite:
		return openSQLite(d, false)
	case dsn.MySQL:
		return openMySQL(ctx, d, passwords)
	}
	return nil, badScheme(d)
}

// replicaConns is the pool size of a replica opened for reads.
const replicaConns = 8

// OpenReadOnly opens the storage named by d for reads only. It neither
// creates the database nor migrates the schema, and it does not connect
// until the first read; a SQLite file is opened read-only and must exist.
func OpenReadOnly(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*DB, error) {
	switch d.Scheme {
	case dsn.SQLite:
		return openSQLite(d, true)
	case dsn.MySQL:
		db, _, err := openMySQLPool(d, passwords, replicaConns)
		return db, err
	}
	return nil, badScheme(d)
}

func badScheme(d dsn.DSN) error { return CheckScheme(d) }

// CheckScheme returns nil for a DSN that Open can open, else the
// PARAM_ERROR that Open would return.
func CheckScheme(d dsn.DSN) error {
	if d.Scheme == dsn.SQLite || d.Scheme == dsn.MySQL {
		return nil
	}
	return tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q: want sqlite: or mysql:", d.String())
}

func openSQLite(d dsn.DSN, readOnly bool) (*DB, error) {
	sync := d.Synchronous
	if sync == "" {
		sync = dsn.SyncFull
	}
	abs, err := filepath.Abs(d.Path)
	if err != nil {
		return nil, err
	}
	if readOnly {
		if _, err := os.Stat(abs); err != nil {
			return nil, err
		}
	}
	const readConns = 8
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	if readOnly {
		pragmas = "mode=ro&_pragma=busy_timeout(10000)"
	}
	// _txlock=immediate takes the write lock at BEGIN, so a transaction that
	// reads and then writes never fails with SQLITE_BUSY halfway through.
	write, err := sql.Open("sqlite", "file:"+abs+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", "file:"+abs+"?"+pragmas)
	if err != nil {
		write.Close()
		return nil, err
	}
	// As many idle as open: with database/sql's default of two, a burst of
	// reads closed and reopened connections, and opening one (the file, the
	// pragmas, the schema) cost more than the reads.
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	return &DB{Write: write, Read: read, dialect: sqliteDialect}, nil
}

// Close closes the storage's pools.
func (db *DB) Close() error {
	err := db.Write.Close()
	if db.Read != db.Write {
		err = errors.Join(err, db.Read.Close())
	}
	return err
}

// Ping checks that the storage answers; op names the caller for errors.
func (db *DB) Ping(ctx context.Context, op string) error {
	if err := db.Write.PingContext(ctx); err != nil {
		return db.Fail(op, err)
	}
	return nil
}

// ReadOnly reports whether the server refuses the application's writes now:
// @@global.read_only on MySQL (a fenced or not yet promoted server), always
// false on SQLite.
func (db *DB) ReadOnly(ctx context.Context, op string) (bool, error) {
	if db.dialect.name != mysqlDialect.name {
		return false, nil
	}
	var ro bool
	if err := db.Read.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return false, db.Fail(op, err)
	}
	return ro, nil
}

// tableExists reports whether the storage has a table named name; q is a
// transaction or connection.
func (db *DB) tableExists(ctx context.Context, q execer, name string) (bool, error) {
	query := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if db.dialect.name == mysqlDialect.name {
		query = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	}
	var n int
	rows, err := q.QueryContext(ctx, query, name)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return false, err
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("look for table %s: %w", name, err)
	}
	return n > 0, nil
}
