package sqlstore

import (
	"errors"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds what differs between SQLite and MySQL.
type dialect struct {
	name string
	// insertIgnore starts an INSERT that skips a row whose key exists.
	insertIgnore string
	// forUpdate ends a SELECT that locks what it reads (MySQL); SQLite's
	// write transactions are serialized already.
	forUpdate string
	// isUniqueViolation reports whether err is a duplicate-key error.
	isUniqueViolation func(err error) bool
	// isContention reports whether err aborted a transaction that may
	// succeed when run again (deadlock, lock wait timeout, busy).
	isContention func(err error) bool
}

var sqliteDialect = dialect{
	name:         "sqlite",
	insertIgnore: "INSERT OR IGNORE",
	isUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	isContention: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
	},
}

var mysqlDialect = dialect{
	name:         "mysql",
	insertIgnore: "INSERT IGNORE",
	forUpdate:    " FOR UPDATE",
	isUniqueViolation: func(err error) bool {
		var e *mysql.MySQLError
		return errors.As(err, &e) && e.Number == 1062 // ER_DUP_ENTRY
	},
	isContention: func(err error) bool {
		var e *mysql.MySQLError
		return errors.As(err, &e) && (e.Number == 1213 || e.Number == 1205) // deadlock, lock wait timeout
	},
}
