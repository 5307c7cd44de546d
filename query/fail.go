package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"tradeunit"
)

// fail classifies err, returned while doing op, into the domain's codes:
// an error that already is a *tradeunit.Error (a caller's PARAM_ERROR)
// stays what it is; a storage that cannot answer now is
// QUERY_STORE_UNAVAILABLE; anything else is a fault of ours, SYSTEM_ERROR.
// Unlike a unit's store, nothing here needs "was it written?": Apply is
// idempotent, so a consumer simply applies the batch again.
func (s *Store) fail(op string, err error) error {
	var e *tradeunit.Error
	if errors.As(err, &e) {
		return err
	}
	if reason, ok := unavailable(err); ok {
		return &tradeunit.Error{Code: tradeunit.CodeQueryUnavailable, Op: op, Err: err,
			Message: "the query store (" + s.target + ") cannot answer now: " + reason + "; the live order API is not affected, retry later"}
	}
	return tradeunit.Internal(op, err)
}

// unavailable reports whether err says that the storage could not be
// reached or could not serve now, and why in a few words.
func unavailable(err error) (reason string, ok bool) {
	var pgErr *pgconn.PgError
	var connectErr *pgconn.ConnectError
	var sqliteErr *sqlite.Error
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "it did not answer before the deadline", true
	case errors.Is(err, context.Canceled):
		return "the request was canceled", true
	case errors.As(err, &connectErr):
		return "cannot connect to it", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return "the connection was lost", true
	case errors.As(err, &netErr):
		return "a network error", true
	case errors.As(err, &pgErr):
		// Classes 08 (connection), 53 (insufficient resources), 57
		// (operator intervention: shutdown, cancel), 3D (the database
		// does not exist: not created, or dropped), and read-only
		// transactions on a standby (25006).
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"),
			strings.HasPrefix(pgErr.Code, "57"), pgErr.Code == "3D000", pgErr.Code == "25006":
			return "the server refused: " + pgErr.Message, true
		}
	case errors.As(err, &sqliteErr):
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
			return sqlite.ErrorCodeString[sqliteErr.Code()], true
		}
	}
	return "", false
}
