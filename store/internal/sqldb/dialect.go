package sqldb

import (
	"errors"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect holds what differs between SQLite and MySQL. The zero Dialect is
// no dialect; a DB carries the one of its storage.
type Dialect struct {
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

var sqliteDialect = Dialect{
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

var mysqlDialect = Dialect{
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

// Name is "sqlite" or "mysql".
func (d Dialect) Name() string { return d.name }

// InsertIgnore starts an INSERT that skips a row whose key exists:
// "INSERT OR IGNORE" or "INSERT IGNORE".
func (d Dialect) InsertIgnore() string { return d.insertIgnore }

// ForUpdate ends a SELECT that locks the rows it reads until the
// transaction ends: " FOR UPDATE" on MySQL, nothing on SQLite, whose write
// transactions are serialized already.
func (d Dialect) ForUpdate() string { return d.forUpdate }

// IsUniqueViolation reports whether err is a duplicate-key error: the one
// storage error a caller causes, which a store answers with the existing
// row instead of classifying it.
func (d Dialect) IsUniqueViolation(err error) bool { return d.isUniqueViolation(err) }

// IsContention reports whether err aborted a transaction that may succeed
// when run again (deadlock, lock wait timeout, busy).
func (d Dialect) IsContention(err error) bool { return d.isContention(err) }

// IsPrivilegeMissing reports whether err is MySQL's refusal of a statement
// the user lacks a privilege for (ER_SPECIFIC_ACCESS_DENIED_ERROR, e.g.
// PROCESS for information_schema.INNODB_TRX; ER_TABLEACCESS_DENIED_ERROR).
func IsPrivilegeMissing(err error) bool {
	var e *mysql.MySQLError
	return errors.As(err, &e) && (e.Number == 1227 || e.Number == 1142)
}
