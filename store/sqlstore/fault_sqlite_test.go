package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
)

// TestSQLiteFaults injects real faults into a unit's SQLite file (see
// runFault for what each case asserts). SQLite has no server to stop or
// connection to kill; its faults are a writer lock another process holds,
// a file that refuses writes, and a full disk. Tests may run as root, for
// whom chmod does not stop writes, and a Store keeps its file open anyway,
// so the read-only and disk-full faults are made inside SQLite, on the
// Store's one writer connection: PRAGMA query_only and PRAGMA
// max_page_count make the engine fail the writes with its own
// SQLITE_READONLY and SQLITE_FULL, as a read-only file or a full disk
// would. An I/O error (SQLITE_IOERR) has no such switch; the table test
// covers it.
func TestSQLiteFaults(t *testing.T) {
	tests := []struct {
		name string
		// busyTimeout is the writer's busy timeout (default 50 ms: the
		// Store's is 10 s, too long for a test).
		busyTimeout time.Duration
		timeout     time.Duration // of each call (default runFault's)
		inject      func(t *testing.T, s *Store, path string) (restore func())
		create, pay want
		read        want
	}{
		{
			// Another writer holds the lock past the busy timeout, on
			// every one of inTx's attempts: BEGIN IMMEDIATE fails, so
			// nothing was written. Readers are not blocked (WAL).
			name: "lock held past the busy timeout", inject: holdSQLiteLock,
			create: nothingWritten, pay: nothingWritten,
		},
		{
			// The same lock, but the caller's deadline comes first: the
			// error stays the context's, for the RPC layer.
			name: "lock held past the caller's deadline", busyTimeout: 10 * time.Second, timeout: 100 * time.Millisecond,
			inject: holdSQLiteLock,
			create: want{code: tradeunit.CodeUnitUnavailable, written: no, deadline: true},
			pay:    want{code: tradeunit.CodeUnitUnavailable, written: no, deadline: true},
		},
		{
			name: "read-only file", inject: sqliteQueryOnly,
			create: nothingWritten, pay: nothingWritten,
		},
		{
			name: "disk full", inject: fillSQLite,
			create: nothingWritten, pay: nothingWritten,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "unit.db")
			s, err := Open(context.Background(), dsn.MustParse("sqlite:"+path), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if tt.busyTimeout == 0 {
				tt.busyTimeout = 50 * time.Millisecond
			}
			sqliteWriterPragma(t, s, fmt.Sprintf("busy_timeout = %d", tt.busyTimeout.Milliseconds()))
			runFault(t, faultRun{
				store:   s,
				inject:  func() func() { return tt.inject(t, s, path) },
				timeout: tt.timeout,
				create:  tt.create, pay: tt.pay, reader: tt.read,
			})
		})
	}
}

// sqliteWriterPragma sets a pragma on the Store's one writer connection,
// which lives as long as the Store (SetMaxOpenConns(1), no idle timeout).
func sqliteWriterPragma(t *testing.T, s *Store, pragma string) {
	t.Helper()
	if _, err := s.write.Exec("PRAGMA " + pragma); err != nil {
		t.Fatalf("PRAGMA %s: %v", pragma, err)
	}
}

// holdSQLiteLock takes the file's write lock from another connection, as
// another process's writer would, and holds it until restore.
func holdSQLiteLock(t *testing.T, _ *Store, path string) func() {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := other.Begin() // BEGIN IMMEDIATE: the write lock
	if err != nil {
		other.Close()
		t.Fatalf("take the write lock: %v", err)
	}
	return func() {
		tx.Rollback()
		other.Close()
	}
}

func sqliteQueryOnly(t *testing.T, s *Store, _ string) func() {
	t.Helper()
	sqliteWriterPragma(t, s, "query_only = 1")
	return func() { sqliteWriterPragma(t, s, "query_only = 0") }
}

// fillSQLite caps the file at its current size and fills it until no
// order and no payment event fits: orders whose keys sort where the test's
// order goes (descending from test-99999999 towards test-00000001; rowids
// always go last), then ORDER_PAID events of the seeded order, the size
// PayOrder writes. Whatever tree ran out of room first, the calls under
// test need room in the same place.
func fillSQLite(t *testing.T, s *Store, _ string) func() {
	t.Helper()
	ctx := context.Background()
	var pages int64
	if err := s.write.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	sqliteWriterPragma(t, s, fmt.Sprintf("max_page_count = %d", pages))
	full := func(what string, n int, err error) bool {
		t.Helper()
		if err == nil {
			if n > 100000 {
				t.Fatalf("%s: still not full after %d rows", what, n)
			}
			return false
		}
		if code := tradeunit.ErrorCode(err); code != tradeunit.CodeUnitUnavailable {
			t.Fatalf("%s: got %v, want the storage full (UNIT_UNAVAILABLE)", what, err)
		}
		return true
	}
	for i := 1; ; i++ {
		_, _, err := s.CreateOrder(ctx, faultOrder("test", 100000000-i))
		if full("fill orders", i, err) {
			break
		}
	}
	payload := fmt.Sprintf(`{"payment_id":%q}`, faultPaymentID)
	for i := 1; ; i++ {
		_, err := s.write.Exec("INSERT INTO order_events (order_no, event_type, payload, create_time) VALUES (?, ?, ?, ?)",
			faultOrder("seed", 1).OrderNo, string(tradeunit.EventOrderPaid), payload, tradeunit.UnixMicros(time.Now()))
		if full("fill events", i, s.fail("fill events", err)) {
			break
		}
	}
	return func() { sqliteWriterPragma(t, s, "max_page_count = 4294967294") }
}
