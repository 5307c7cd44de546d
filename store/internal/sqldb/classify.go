package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"tradeunit"
)

// A storage failure is one of three things to a store's caller (a unit's
// storage or a directory shard's), and faults is the one table that says
// which, for every failure a store knows:
//
//   - refused: the storage did not do the work and said so, or could not
//     be reached at all: nothing was written, and the same call may succeed
//     later or on another unit. UNIT_UNAVAILABLE (tradeunit.Unavailable).
//   - lost: the storage may have received the statement, but its answer was
//     lost with the connection (reset, EOF, timeout, the server killed or
//     gone). Before COMMIT this is still "nothing written": a transaction
//     that never committed is rolled back by the server when its connection
//     ends. At COMMIT, and only there, the outcome is unknown: the COMMIT
//     may have reached the server and been applied before the answer was
//     lost. UNIT_UNAVAILABLE, and at COMMIT wrapping
//     tradeunit.ErrOutcomeUnknown (tradeunit.UnknownOutcome).
//   - a bug: anything the table does not name — a syntax error, an unknown
//     column, a scan into the wrong type, a constraint other than the unique
//     keys a store handles — is a fault of ours: SYSTEM_ERROR
//     (tradeunit.Internal).
//
// No storage failure is a caller's error: the one the caller causes, a
// duplicate key, is recognized by IsUniqueViolation where it is expected
// and answered as the existing record, before anything is classified.
//
// The caller's own deadline or cancellation is refused (nothing written: a
// statement cut by its context closes its connection, and database/sql
// reports the context only for a COMMIT it has not sent), and the error
// keeps the context error in its chain, so that the RPC layer answers "no
// answer" when its request's context is done.
//
// Rows match by error number, code or value, never by message; the first
// row that matches decides. A row's dialect is "" when it holds for both.
var faults = []fault{
	// Both dialects: the context, the connection, the network.
	{"", "the caller's deadline passed", is(context.DeadlineExceeded), refused,
		"the storage did not answer before the request's deadline; nothing was written"},
	{"", "the caller canceled", is(context.Canceled), refused,
		"the request was canceled before the storage answered; nothing was written"},
	// database/sql's contract: a driver returns ErrBadConn only when the
	// server cannot have performed the operation (go-sql-driver: nothing
	// of the command was sent), so even at COMMIT nothing was written.
	{"", "bad connection, nothing sent (driver.ErrBadConn)", is(driver.ErrBadConn), refused,
		msgUnreachable},
	{"", "cannot connect (dial: refused, timeout, no route)", dialError, refused, msgUnreachable},
	{"", "connection refused", is(syscall.ECONNREFUSED), refused, msgUnreachable},
	{"", "connection reset", is(syscall.ECONNRESET), lost, msgLost},
	{"", "broken pipe", is(syscall.EPIPE), lost, msgLost},
	{"", "connection closed (EOF)", is(io.EOF), lost, msgLost},
	{"", "connection closed mid-packet (unexpected EOF)", is(io.ErrUnexpectedEOF), lost, msgLost},
	{"", "short write", is(io.ErrShortWrite), lost, msgLost},
	{"", "use of a closed connection", is(net.ErrClosed), lost, msgLost},
	{"", "connection already closed (sql.ErrConnDone)", is(sql.ErrConnDone), lost, msgLost},
	{"", "i/o timeout", netTimeout, lost, msgLost},

	// MySQL / MariaDB. The driver reports a connection that failed while
	// a command was on its way as ErrInvalidConn (the cause only goes to
	// its logger); the numbers are the server's (perror N, err.mariadb.com).
	{"mysql", "connection lost (mysql.ErrInvalidConn)", is(mysql.ErrInvalidConn), lost, msgLost},
	{"mysql", "server gone away (2006 CR_SERVER_GONE_ERROR)", mysqlError(2006), lost, msgLost},
	{"mysql", "lost connection during query (2013 CR_SERVER_LOST)", mysqlError(2013), lost, msgLost},
	{"mysql", "connection killed (1927 ER_CONNECTION_KILLED)", mysqlError(1927), lost,
		"the storage ended the unit's connection (killed); nothing was written; retry later"},
	{"mysql", "query interrupted (1317 ER_QUERY_INTERRUPTED)", mysqlError(1317), lost,
		"the storage interrupted the statement (killed); nothing was written; retry later"},
	{"mysql", "server shutting down (1053 ER_SERVER_SHUTDOWN)", mysqlError(1053), lost,
		"the unit's storage is shutting down; nothing was written; retry later"},
	{"mysql", "statement timeout (1969 ER_STATEMENT_TIMEOUT; MySQL 3024 ER_QUERY_TIMEOUT)", mysqlError(1969, 3024), refused,
		"the storage gave up on a statement that took too long; nothing was written; retry later"},
	{"mysql", "read-only (1290 ER_OPTION_PREVENTS_STATEMENT: --read-only)", mysqlError(1290), refused, msgReadOnly},
	{"mysql", "read-only (1836 ER_READ_ONLY_MODE, 1874 ER_INNODB_READ_ONLY)", mysqlError(1836, 1874), refused, msgReadOnly},
	// InTx has already run these again (txAttempts): what reaches here
	// is contention that outlasted the retries. The server rolled the
	// statement or the transaction back, and TryTx rolls back the rest.
	{"mysql", "lock wait timeout (1205 ER_LOCK_WAIT_TIMEOUT)", mysqlError(1205), refused, msgBusy},
	{"mysql", "deadlock (1213 ER_LOCK_DEADLOCK)", mysqlError(1213), refused, msgBusy},
	{"mysql", "disk full (1021 ER_DISK_FULL, 1114 ER_RECORD_FILE_FULL)", mysqlError(1021, 1114), refused, msgFull},
	{"mysql", "write or engine failure (3 EE_WRITE, 1026 ER_ERROR_ON_WRITE, 1030 ER_GET_ERRNO: e.g. errno 28 ENOSPC)",
		mysqlError(3, 1026, 1030), refused, msgStorageFault},
	{"mysql", "too many connections (1040 ER_CON_COUNT_ERROR, 1203 ER_TOO_MANY_USER_CONNECTIONS, 1226 ER_USER_LIMIT_REACHED)",
		mysqlError(1040, 1203, 1226), refused,
		"the unit's storage accepts no more connections; nothing was written; retry later"},
	{"mysql", "out of resources (1037 ER_OUTOFMEMORY, 1041 ER_OUT_OF_RESOURCES, 1206 ER_LOCK_TABLE_FULL, 1637 ER_TOO_MANY_CONCURRENT_TRXS)",
		mysqlError(1037, 1041, 1206, 1637), refused,
		"the unit's storage is out of resources; nothing was written; retry later"},
	{"mysql", "login refused (1044 ER_DBACCESS_DENIED_ERROR, 1045 ER_ACCESS_DENIED_ERROR)", mysqlError(1044, 1045), refused,
		"the unit's storage refused the unit's login (misconfigured); nothing was written; retry later"},

	// SQLite (modernc.org/sqlite reports extended result codes; most rows
	// match the primary code, so every extended code of it too).
	{"sqlite", "busy or locked after the busy timeout (SQLITE_BUSY, SQLITE_LOCKED)",
		sqliteCode(sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED), refused, msgBusy},
	{"sqlite", "read-only (SQLITE_READONLY and its extended codes)", sqliteCode(sqlite3.SQLITE_READONLY), refused,
		"the unit's storage file is read-only; nothing was written; retry later"},
	{"sqlite", "disk full (SQLITE_FULL)", sqliteCode(sqlite3.SQLITE_FULL), refused, msgFull},
	// An I/O error at COMMIT may come after the commit record reached the
	// WAL (a failed fsync): recovery may replay it, so its outcome is
	// unknown; before COMMIT the transaction is rolled back.
	{"sqlite", "I/O error (SQLITE_IOERR and its extended codes)", sqliteCode(sqlite3.SQLITE_IOERR), lost, msgStorageFault},
	{"sqlite", "cannot open the file (SQLITE_CANTOPEN)", sqliteCode(sqlite3.SQLITE_CANTOPEN), refused, msgStorageFault},
	{"sqlite", "out of memory (SQLITE_NOMEM)", sqliteCode(sqlite3.SQLITE_NOMEM), refused,
		"the unit's storage is out of resources; nothing was written; retry later"},
	{"sqlite", "interrupted (SQLITE_INTERRUPT)", sqliteCode(sqlite3.SQLITE_INTERRUPT), refused,
		"the storage interrupted the statement; nothing was written; retry later"},
	{"sqlite", "WAL lock protocol failure (SQLITE_PROTOCOL)", sqliteCode(sqlite3.SQLITE_PROTOCOL), refused, msgBusy},
	// A damaged file is no mistake of the caller's and no bug in this
	// code; the unit cannot serve until an operator repairs it, and a
	// create is right to go to another unit. So: refused, with a message
	// that names it (the unit's health checks and logs carry the alarm).
	{"sqlite", "damaged file (SQLITE_CORRUPT, SQLITE_NOTADB)", sqliteCode(sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB), refused,
		"the unit's storage file is damaged; nothing was written; the unit needs repair, retry later"},
}

// Caller-safe messages shared by several rows.
const (
	msgUnreachable  = "the unit's storage cannot be reached; nothing was written; retry later"
	msgLost         = "the connection to the unit's storage was lost; nothing was written; retry later"
	msgReadOnly     = "the unit's storage is read-only (fenced or failing over); nothing was written; retry later"
	msgBusy         = "the unit's storage is busy (lock contention outlasted the retries); nothing was written; retry later"
	msgFull         = "the unit's storage is full; nothing was written; retry later"
	msgStorageFault = "the unit's storage failed to read or write its files; nothing was written; retry later"
)

// faultClass is what a storage failure means to the caller; see faults.
type faultClass int

const (
	bug     faultClass = iota // SYSTEM_ERROR: a fault of ours
	refused                   // UNIT_UNAVAILABLE: nothing written
	lost                      // UNIT_UNAVAILABLE: nothing written, or at COMMIT outcome unknown
)

func (c faultClass) String() string {
	switch c {
	case refused:
		return "refused"
	case lost:
		return "lost"
	}
	return "bug"
}

// fault is one row of faults.
type fault struct {
	dialect string // "sqlite", "mysql", or "" for both
	name    string // what failed, for readers and test names
	match   func(error) bool
	class   faultClass
	message string // caller-safe; the cause stays in the error's chain
}

// classify returns the row of faults that matches err in dialect d, or a
// row of class bug.
func (d Dialect) classify(err error) fault {
	for _, f := range faults {
		if (f.dialect == "" || f.dialect == d.name) && f.match(err) {
			return f
		}
	}
	return fault{name: "unclassified", class: bug}
}

// StorageError turns err, returned by the database while doing op, into
// the error a store returns; commit says whether err is COMMIT's, the one
// place where a lost connection leaves the outcome unknown. An error that
// is already a *tradeunit.Error is returned as it is.
func (d Dialect) StorageError(op string, err error, commit bool) error {
	if err == nil {
		return nil
	}
	var te *tradeunit.Error
	if errors.As(err, &te) {
		return err
	}
	switch f := d.classify(err); {
	case f.class == lost && commit:
		return tradeunit.UnknownOutcome(op, err)
	case f.class == refused, f.class == lost:
		return tradeunit.Unavailable(op, f.message, err)
	}
	return tradeunit.Internal(op, err)
}

// Fail is StorageError for any statement but COMMIT.
func (db *DB) Fail(op string, err error) error { return db.dialect.StorageError(op, err, false) }

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func mysqlError(numbers ...uint16) func(error) bool {
	return func(err error) bool {
		var e *mysql.MySQLError
		if !errors.As(err, &e) {
			return false
		}
		for _, n := range numbers {
			if e.Number == n {
				return true
			}
		}
		return false
	}
}

// sqliteCode matches an SQLite error whose primary result code (the low
// byte of an extended code) is one of codes.
func sqliteCode(codes ...int) func(error) bool {
	return func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		for _, c := range codes {
			if e.Code()&0xff == c {
				return true
			}
		}
		return false
	}
}

// dialError matches a failure to open a connection: nothing was sent on it.
func dialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// netTimeout matches a network timeout (a read or write deadline).
func netTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
