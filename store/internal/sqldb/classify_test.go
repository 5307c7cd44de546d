package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"tradeunit"
)

// sqliteErr builds the *sqlite.Error the driver returns for result code
// code. The type has no constructor and unexported fields, so they are set
// through reflect and unsafe: only the table test needs errors the fault
// tests cannot provoke on a real file (I/O errors, a damaged file).
func sqliteErr(code int) error {
	e := &sqlite.Error{}
	v := reflect.ValueOf(e).Elem()
	set := func(name string, val any) {
		f := v.FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(val))
	}
	set("code", code)
	set("msg", fmt.Sprintf("%s (%d)", sqlite.ErrorCodeString[code], code))
	return e
}

func opErr(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3307},
		Err: &os.SyscallError{Syscall: op, Err: errno}}
}

func TestClassifyTable(t *testing.T) {
	tests := []struct {
		dialect Dialect
		err     error
		want    faultClass
	}{
		{sqliteDialect, context.DeadlineExceeded, refused},
		{mysqlDialect, context.Canceled, refused},
		{mysqlDialect, driver.ErrBadConn, refused},
		{mysqlDialect, opErr("dial", syscall.ECONNREFUSED), refused},
		{mysqlDialect, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, refused},
		{mysqlDialect, syscall.ECONNREFUSED, refused},
		{mysqlDialect, opErr("read", syscall.ECONNRESET), lost},
		{mysqlDialect, opErr("write", syscall.EPIPE), lost},
		{mysqlDialect, io.EOF, lost},
		{mysqlDialect, io.ErrUnexpectedEOF, lost},
		{mysqlDialect, io.ErrShortWrite, lost},
		{mysqlDialect, net.ErrClosed, lost},
		{sqliteDialect, sql.ErrConnDone, lost},
		{mysqlDialect, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, lost},
		{mysqlDialect, mysql.ErrInvalidConn, lost},
		{mysqlDialect, &mysql.MySQLError{Number: 2006}, lost},
		{mysqlDialect, &mysql.MySQLError{Number: 2013}, lost},
		{mysqlDialect, &mysql.MySQLError{Number: 1927}, lost},
		{mysqlDialect, &mysql.MySQLError{Number: 1317}, lost},
		{mysqlDialect, &mysql.MySQLError{Number: 1053}, lost},
		{mysqlDialect, &mysql.MySQLError{Number: 1969}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1290, Message: "The MariaDB server is running with the --read-only option"}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1836}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1205}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1213}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1021}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1114}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1030, Message: "Got error 28 \"No space left on device\" from storage engine InnoDB"}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1040}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1203}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1637}, refused},
		{mysqlDialect, &mysql.MySQLError{Number: 1045}, refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_BUSY), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_LOCKED_SHAREDCACHE), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_READONLY), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_READONLY_DBMOVED), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_FULL), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_IOERR_FSYNC), lost},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_CANTOPEN), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_NOMEM), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_INTERRUPT), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_PROTOCOL), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_CORRUPT), refused},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_NOTADB), refused},

		// Bugs of ours, and rows of the other dialect.
		{mysqlDialect, &mysql.MySQLError{Number: 1064, Message: "You have an error in your SQL syntax"}, bug},
		{mysqlDialect, &mysql.MySQLError{Number: 1054, Message: "Unknown column 'x'"}, bug},
		{mysqlDialect, &mysql.MySQLError{Number: 4025, Message: "CONSTRAINT `orders_refunded_bounds` failed"}, bug},
		{mysqlDialect, &mysql.MySQLError{Number: 1062}, bug}, // a duplicate the Store did not expect
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_ERROR), bug},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_CONSTRAINT_CHECK), bug},
		{sqliteDialect, sqliteErr(sqlite3.SQLITE_MISMATCH), bug},
		{sqliteDialect, &mysql.MySQLError{Number: 1290}, bug},
		{mysqlDialect, sqliteErr(sqlite3.SQLITE_BUSY), bug},
		{sqliteDialect, errors.New(`sql: Scan error on column index 0, name "total": converting driver.Value type string ("x") to a int64: invalid syntax`), bug},
		{mysqlDialect, sql.ErrNoRows, bug},
	}
	hit := map[string]bool{}
	for _, tt := range tests {
		for _, wrap := range []bool{false, true} {
			err := tt.err
			if wrap {
				err = fmt.Errorf("insert order: %w", err)
			}
			name := fmt.Sprintf("%s/%v/wrapped=%v", tt.dialect.name, tt.err, wrap)
			f := tt.dialect.classify(err)
			hit[f.dialect+"\x00"+f.name] = true
			if f.class != tt.want {
				t.Errorf("%s: class %v (row %q), want %v", name, f.class, f.name, tt.want)
				continue
			}
			for _, commit := range []bool{false, true} {
				checkStorageError(t, fmt.Sprintf("%s/commit=%v", name, commit), tt.dialect.StorageError("store.Test", err, commit), err, f, commit)
			}
		}
	}
	for _, f := range faults {
		if !hit[f.dialect+"\x00"+f.name] {
			t.Errorf("row %q (%s) has no case in this test", f.name, f.dialect)
		}
	}
}

// checkStorageError checks what storageError made of cause, classified as
// f: the code, whether the outcome is unknown, the caller-safe message, and
// that the cause stays in the chain.
func checkStorageError(t *testing.T, name string, got, cause error, f fault, commit bool) {
	t.Helper()
	wantCode, wantUnknown := tradeunit.CodeUnitUnavailable, false
	switch {
	case f.class == bug:
		wantCode, wantUnknown = tradeunit.CodeInternal, true // tradeunit.OutcomeUnknown: nothing is promised after a bug
	case f.class == lost && commit:
		wantUnknown = true
	}
	if code := tradeunit.ErrorCode(got); code != wantCode {
		t.Errorf("%s: code %s, want %s", name, code, wantCode)
	}
	if u := tradeunit.OutcomeUnknown(got); u != wantUnknown {
		t.Errorf("%s: OutcomeUnknown %v, want %v", name, u, wantUnknown)
	}
	if f.class != bug && errors.Is(got, tradeunit.ErrOutcomeUnknown) != (f.class == lost && commit) {
		t.Errorf("%s: errors.Is(ErrOutcomeUnknown) = %v", name, errors.Is(got, tradeunit.ErrOutcomeUnknown))
	}
	if !errors.Is(got, cause) {
		t.Errorf("%s: %v does not wrap its cause", name, got)
	}
	msg := tradeunit.ErrorMessage(got)
	if f.class == refused || (f.class == lost && !commit) {
		if msg != f.message || !strings.Contains(msg, "nothing was written") {
			t.Errorf("%s: message %q, want the row's %q, saying nothing was written", name, msg, f.message)
		}
	}
	if strings.Contains(msg, cause.Error()) {
		t.Errorf("%s: message %q shows the cause", name, msg)
	}
}

func TestStorageErrorKeepsContextAndDomainErrors(t *testing.T) {
	err := sqliteDialect.StorageError("store.PayOrder", fmt.Errorf("exec: %w", context.DeadlineExceeded), false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v: the context error is lost; the RPC layer needs it to answer \"no answer\"", err)
	}
	nf := tradeunit.Errorf(tradeunit.CodeNotFound, "order x does not exist")
	if got := mysqlDialect.StorageError("store.Order", nf, true); got != error(nf) {
		t.Errorf("storageError(%v) = %v, want it unchanged", nf, got)
	}
	if got := mysqlDialect.StorageError("store.Order", nil, true); got != nil {
		t.Errorf("storageError(nil) = %v, want nil", got)
	}
}
