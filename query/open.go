package query

import (
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"tradeunit"
	"tradeunit/dsn"
)

// dialect holds what differs between SQLite and PostgreSQL; the queries
// themselves are shared ($N placeholders, ON CONFLICT, both understand).
type dialect struct {
	name string
	// readTxOptions gives reads one snapshot: SQLite's deferred
	// transactions have one already; PostgreSQL needs REPEATABLE READ.
	readTxOptions *sql.TxOptions
	// isContention reports whether err aborted a transaction that may
	// succeed when run again.
	isContention func(err error) bool
}

var sqliteDialect = dialect{
	name:          "sqlite",
	readTxOptions: &sql.TxOptions{ReadOnly: true},
	isContention: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
	},
}

var postgresDialect = dialect{
	name:          "postgres",
	readTxOptions: &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
	isContention: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && (e.Code == "40001" || e.Code == "40P01") // serialization failure, deadlock
	},
}

// target is a parsed Open target.
type target struct {
	dialect dialect
	// sqlite is the SQLite DSN; pgURL the PostgreSQL URL.
	sqlite dsn.DSN
	pgURL  string
}

func parseTarget(s string) (target, error) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			return target{}, tradeunit.Errorf(tradeunit.CodeParamError, "query store URL %q is malformed: write postgres://USER@HOST:PORT/DB?sslmode=disable", redactURL(s))
		}
		if _, has := u.User.Password(); has {
			return target{}, tradeunit.Errorf(tradeunit.CodeParamError, "query store URL %s holds a password: drop it and set PGPASSWORD or a PGPASSFILE on this host", redactURL(s))
		}
		if u.Query().Has("password") {
			return target{}, tradeunit.Errorf(tradeunit.CodeParamError, "query store URL %s holds a password parameter: drop it and set PGPASSWORD or a PGPASSFILE on this host", redactURL(s))
		}
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return target{}, tradeunit.Errorf(tradeunit.CodeParamError, "query store URL %s must name a server and a database: postgres://USER@HOST:PORT/DB?sslmode=disable", redactURL(s))
		}
		if _, err := pgconn.ParseConfig(s); err != nil {
			return target{}, tradeunit.Errorf(tradeunit.CodeParamError, "query store URL %s: %v", redactURL(s), err)
		}
		return target{dialect: postgresDialect, pgURL: s}, nil
	case strings.HasPrefix(s, "sqlite:"):
		d, err := dsn.Parse(s)
		if err != nil {
			return target{}, err
		}
		return target{dialect: sqliteDialect, sqlite: d}, nil
	}
	return target{}, tradeunit.Errorf(tradeunit.CodeParamError, "query store %q: want sqlite:PATH or postgres://USER@HOST:PORT/DB", redactURL(s))
}

// redactURL hides a password a URL may hold, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") || strings.Contains(s, "password") {
			return "(a malformed URL that may hold a password)"
		}
		return s
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func openStorage(t target) (*Store, error) {
	if t.dialect.name == postgresDialect.name {
		db, err := sql.Open("pgx", t.pgURL)
		if err != nil {
			return nil, tradeunit.Errorf(tradeunit.CodeParamError, "query store URL %s: %v", t.pgURL, err)
		}
		db.SetMaxOpenConns(16)
		return &Store{write: db, read: db, dialect: postgresDialect, target: t.pgURL}, nil
	}
	abs, err := filepath.Abs(t.sqlite.Path)
	if err != nil {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "query store %s: %v", t.sqlite, err)
	}
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(" + t.sqlite.Synchronous + ")&_pragma=busy_timeout(10000)"
	// _txlock=immediate takes the write lock at BEGIN, so that a write
	// transaction never fails with SQLITE_BUSY halfway through.
	write, err := sql.Open("sqlite", "file:"+abs+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	// One writer: SQLite has one at a time, and more only busy-wait.
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", "file:"+abs+"?"+pragmas)
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(8)
	return &Store{write: write, read: read, dialect: sqliteDialect, target: t.sqlite.String()}, nil
}
