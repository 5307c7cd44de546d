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
	"net/url"
	"path/filepath"
	"strings"

	"tradeunit"
)

// LocalMySQL is the go-sql-driver DSN (no database) of the MariaDB server of
// a development machine or CI: root with no password on the loopback port.
const LocalMySQL = "root@tcp(127.0.0.1:3306)/"

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

// Open opens (creating if needed) the storage named by dsn and applies the
// embedded schema migrations. DSNs:
//
//	sqlite:PATH[?synchronous=FULL|NORMAL]   one file per unit (FULL, the default, is durable)
//	mysql:USER[:PASS]@tcp(HOST:PORT)/DB[?PARAMS]   one database per unit, created if missing
func Open(ctx context.Context, dsn string) (*Store, error) {
	scheme, rest, ok := strings.Cut(dsn, ":")
	if !ok || rest == "" {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q must start with sqlite: or mysql:", redact(dsn))
	}
	var (
		s   *Store
		err error
	)
	switch scheme {
	case "sqlite":
		s, err = openSQLite(rest)
	case "mysql":
		s, err = openMySQL(ctx, rest)
	default:
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q: unknown scheme %q (want sqlite or mysql)", redact(dsn), scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", redact(dsn), err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate storage %s: %w", redact(dsn), err)
	}
	return s, nil
}

// replicaConns is the pool size of a replica opened for reads.
const replicaConns = 8

// OpenReplica opens the storage named by dsn (as Open) for reads only: a
// replica of a unit's primary. It neither creates the database nor migrates
// the schema, since a replica is read-only and gets both from its primary,
// and it does not connect until the first read. The Store's changing
// methods fail on a read-only server; use only its reads.
func OpenReplica(ctx context.Context, dsn string) (*Store, error) {
	scheme, rest, ok := strings.Cut(dsn, ":")
	if !ok || rest == "" {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q must start with sqlite: or mysql:", redact(dsn))
	}
	var (
		s   *Store
		err error
	)
	switch scheme {
	case "sqlite":
		s, err = openSQLite(rest)
	case "mysql":
		s, _, err = openMySQLPool(rest, replicaConns)
	default:
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "storage DSN %q: unknown scheme %q (want sqlite or mysql)", redact(dsn), scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open replica %s: %w", redact(dsn), err)
	}
	return s, nil
}

func openSQLite(rest string) (*Store, error) {
	path, query, _ := strings.Cut(rest, "?")
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("parse options: %w", err)
	}
	sync := strings.ToUpper(params.Get("synchronous"))
	switch sync {
	case "":
		sync = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "sqlite synchronous must be FULL or NORMAL, got %q", sync)
	}
	if path == "" {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "sqlite DSN needs a file path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
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

// Redact returns dsn with its password hidden, for logs and errors.
func Redact(dsn string) string { return redact(dsn) }

// redact hides a password in a DSN for logs and errors.
func redact(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	user := dsn[:at]
	if i := strings.Index(user, ":"); i >= 0 {
		if j := strings.Index(user[i+1:], ":"); j >= 0 {
			return user[:i+1+j+1] + "***" + dsn[at:]
		}
	}
	return dsn
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
