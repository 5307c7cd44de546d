package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

var _ tradeunit.Outbox = (*Store)(nil)

// trxCacheIdle is how long InnoDB's information_schema.INNODB_TRX cache
// must go unread before a read refreshes it (CACHE_MIN_IDLE_TIME_US, 100
// ms), with a margin. The cache is not refreshed on a timer: a read within
// 100 ms of the previous read, anyone's, gets the same copy, so its age is
// unbounded while someone reads it often. What a read shows must be
// proven fresh (see OpenWriters), and it must be polled slower than this.
const trxCacheIdle = 150 * time.Millisecond

const eventColumns = "id, order_no, event_type, payload, create_time"

// Events returns outbox events after afterID, oldest first. An event
// becomes visible when its transaction commits, and on MySQL transactions
// commit in another order than they numbered their events: a gap below the
// newest event may still fill (see OpenWriters).
func (s *Store) Events(ctx context.Context, afterID int64, limit int) ([]tradeunit.Event, error) {
	return s.queryEvents(ctx, "store.Events", nil,
		"SELECT "+eventColumns+" FROM order_events WHERE id > ? ORDER BY id LIMIT ?", afterID, limit)
}

// ReadOutbox returns, in one statement (one snapshot), the events of the
// gaps that exist now and up to limit events after afterID, oldest first.
// One snapshot for both is what keeps an order's events in order: an
// order's later change waits on its row lock for the earlier one to commit
// before it numbers its event, so whenever the later event is visible the
// earlier is too, and the relay gets them in the same read.
func (s *Store) ReadOutbox(ctx context.Context, afterID int64, limit int, gaps []tradeunit.IDRange) ([]tradeunit.Event, error) {
	if limit < 1 {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "outbox read limit must be positive, got %d", limit)
	}
	var q strings.Builder
	var args []any
	if len(gaps) > 0 {
		q.WriteString("SELECT " + eventColumns + " FROM order_events WHERE ")
		for i, g := range gaps {
			if i > 0 {
				q.WriteString(" OR ")
			}
			q.WriteString("id BETWEEN ? AND ?")
			args = append(args, g.Lo, g.Hi)
		}
		q.WriteString(" UNION ALL ")
	}
	q.WriteString("SELECT " + eventColumns + " FROM (SELECT " + eventColumns +
		" FROM order_events WHERE id > ? ORDER BY id LIMIT ?) fresh ORDER BY id")
	args = append(args, afterID, limit)
	events, err := s.queryEvents(ctx, "store.ReadOutbox", nil, q.String(), args...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(events, func(a, b tradeunit.Event) int { return cmp.Compare(a.ID, b.ID) })
	return events, nil
}

// LastEventID returns the highest event id written (0: none).
func (s *Store) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.read.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM order_events").Scan(&id); err != nil {
		return 0, s.fail("store.LastEventID", err)
	}
	return id, nil
}

// queryEvents appends to out the events a query of eventColumns reads.
func (s *Store) queryEvents(ctx context.Context, op string, out []tradeunit.Event, query string, args ...any) ([]tradeunit.Event, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  tradeunit.Event
			at int64
		)
		if err := rows.Scan(&e.ID, &e.OrderNo, &e.Type, &e.Payload, &at); err != nil {
			return nil, s.fail(op, err)
		}
		e.Time = tradeunit.FromUnixMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// OpenWriters names the write transactions open at since that have not
// ended. SQLite has one writer at a time and numbers an event only inside
// it, so once an event is visible every event numbered before it has
// committed or never will: a gap is final, and the set is empty.
//
// On MySQL it is the transactions information_schema.INNODB_TRX lists, of
// any database on the server: more than the writers of this outbox, which
// only makes a relay wait longer. INNODB_TRX is a cache of unbounded age
// (trxCacheIdle), so OpenWriters starts a transaction of its own, a marker
// begun after since, and reads until the cache lists it: a copy that lists
// the marker was taken after since, and lists every transaction open then
// that has not ended. Reads are trxCacheIdle apart, since a quicker read
// keeps the cache from refreshing; while other sessions read INNODB_TRX
// that often, it waits, up to ctx.
func (s *Store) OpenWriters(ctx context.Context, since time.Time) (tradeunit.Writers, error) {
	const op = "store.OpenWriters"
	if s.dialect.Name() != "mysql" {
		return nil, nil
	}
	if wait := time.Until(since); wait > 0 { // a marker must begin after since
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, s.fail(op, err)
		}
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer conn.Close()
	// WITH CONSISTENT SNAPSHOT starts the InnoDB transaction at once (a
	// plain BEGIN would wait for its first read of an InnoDB table),
	// and the driver's BeginTx cannot ask for it.
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return nil, s.fail(op, err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // not back to the pool mid-transaction
		}
	}()
	for {
		w, listed, err := s.readWriters(ctx, conn)
		if err != nil {
			return nil, s.trxFail(op, err)
		}
		if listed {
			return w, nil
		}
		if err := sleepCtx(ctx, trxCacheIdle); err != nil {
			return nil, s.fail(op, err)
		}
	}
}

// readWriters reads INNODB_TRX on conn: the transactions it lists but
// conn's own, and whether it lists conn's own. A transaction with id 0 is
// left out: InnoDB gives one an id when it first writes, and one that
// numbered an event has written; the read-only ones (a backup's snapshot,
// a long report) would only hold a relay up.
func (s *Store) readWriters(ctx context.Context, conn *sql.Conn) (tradeunit.Writers, bool, error) {
	rows, err := conn.QueryContext(ctx, "SELECT trx_id, trx_mysql_thread_id = CONNECTION_ID() FROM information_schema.INNODB_TRX")
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var (
		w      tradeunit.Writers
		listed bool
	)
	for rows.Next() {
		var (
			id   string
			mine bool
		)
		if err := rows.Scan(&id, &mine); err != nil {
			return nil, false, err
		}
		switch {
		case mine:
			listed = true
		case id != "0":
			w = append(w, id)
		}
	}
	return w, listed, rows.Err()
}

// WritersEnded reports whether every transaction of w has ended. The
// INNODB_TRX copy it reads is at least as new as the one OpenWriters read
// (copies only ever replace older ones), and a writer's id is never
// reused: a stale copy makes the answer late, never early. Callers poll it
// no more often than every trxCacheIdle, or the copy never refreshes.
func (s *Store) WritersEnded(ctx context.Context, w tradeunit.Writers) (bool, error) {
	const op = "store.WritersEnded"
	if len(w) == 0 {
		return true, nil
	}
	if s.dialect.Name() != "mysql" {
		return false, tradeunit.Errorf(tradeunit.CodeParamError, "SQLite names no open writers; got %d", len(w))
	}
	args := make([]any, len(w))
	for i, id := range w {
		args[i] = id
	}
	var open int
	err := s.write.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_id IN "+placeholders(len(w)), args...).Scan(&open)
	if err != nil {
		return false, s.trxFail(op, err)
	}
	return open == 0, nil
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// trxFail is fail for a read of INNODB_TRX, which needs the PROCESS
// privilege: without it, say so, since no retry will help.
func (s *Store) trxFail(op string, err error) error {
	if sqldb.IsPrivilegeMissing(err) {
		return &tradeunit.Error{Code: tradeunit.CodeInternal, Op: op, Err: err,
			Message: "the storage user may not read information_schema.INNODB_TRX: it needs the PROCESS privilege (GRANT PROCESS ON *.* TO the user)"}
	}
	return s.fail(op, err)
}

// placeholders returns "(?, ?, ...)" with n placeholders.
func placeholders(n int) string {
	return "(?" + strings.Repeat(", ?", n-1) + ")"
}
