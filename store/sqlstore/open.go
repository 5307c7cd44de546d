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
	"os"
	"path/filepath"

	"tradeunit"
	"tradeunit/dsn"
)

// LocalMySQL is the server of a development machine or CI: root with no
// password on the loopback port.
var LocalMySQL = dsn.MustParse("mysql:root@tcp(127.0.0.1:3306)/")

// Store is a unit's storage over database/sql.
type Store struct {
	// write runs every transaction. On SQLite it has one connection: SQLite
	// has one writer at a time, and a pool of writers only burns CPU in its
	// busy-wait (MEASURED.md: p99.9 of seconds for no throughput gain).
	write *sql.DB
	// read serves reads that need no transaction; on MySQL it is write.
	read    *sql.DB
	dialect dialect
	// beforeCommit, when set, runs in tryTx between a transaction's last
	// statement and its COMMIT: fault tests cut the connection there. nil
	// outside tests.
	beforeCommit func()
}

var _ tradeunit.Store = (*Store)(nil)

// Open opens (creating if needed) the storage named by d and applies the
// embedded schema migrations: one SQLite file per unit, or one MySQL
// database per unit, created if missing, connecting with the password
// passwords knows for d's user and server (nil: none).
func Open(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*Store, error) {
	var (
		s   *Store
		err error
	)
	switch d.Scheme {
	case dsn.SQLite:
		s, err = openSQLite(d, false)
	case dsn.MySQL:
		s, err = openMySQL(ctx, d, passwords)
	default:
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q: want sqlite: or mysql:", d.String())
	}
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", d, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate storage %s: %w", d, err)
	}
	return s, nil
}

// replicaConns is the pool size of a replica opened for reads.
const replicaConns = 8

// OpenReadOnly opens the storage named by d for reads only: a replica of a
// unit's primary, or any unit's storage an operator's command reads. It
// neither creates the database nor migrates the schema (a replica gets both
// from its primary; a command that only reads must change nothing), and it
// does not connect until the first read; a SQLite file is opened read-only
// and must exist. The Store's changing methods fail.
func OpenReadOnly(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (*Store, error) {
	var (
		s   *Store
		err error
	)
	switch d.Scheme {
	case dsn.SQLite:
		s, err = openSQLite(d, true)
	case dsn.MySQL:
		s, _, err = openMySQLPool(d, passwords, replicaConns)
	default:
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q: want sqlite: or mysql:", d.String())
	}
	if err != nil {
		return nil, fmt.Errorf("open %s read-only: %w", d, err)
	}
	return s, nil
}

func openSQLite(d dsn.DSN, readOnly bool) (*Store, error) {
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
	read.SetMaxOpenConns(8)
	return &Store{write: write, read: read, dialect: sqliteDialect}, nil
}

// Ping checks that the storage answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return s.fail("store.Ping", err)
	}
	return nil
}

// Close closes the storage.
func (s *Store) Close() error {
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// ReadOnly reports whether the server refuses the application's writes now:
// @@global.read_only on MySQL (a fenced or not yet promoted server), always
// false on SQLite.
func (s *Store) ReadOnly(ctx context.Context) (bool, error) {
	if s.dialect.name != mysqlDialect.name {
		return false, nil
	}
	var ro bool
	if err := s.read.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return false, s.fail("store.ReadOnly", err)
	}
	return ro, nil
}
