package sqlstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

var _ tradeunit.Outbox = (*Store)(nil)

// trxViewLag is how far MySQL's view of its open transactions may lag
// behind them, with a margin: InnoDB fills information_schema.INNODB_TRX
// from a cache it refreshes at most every 100 ms, so a read at time X shows
// the transactions of some instant in [X-100ms, X].
const trxViewLag = 150 * time.Millisecond

const eventColumns = "id, order_no, event_type, payload, create_time"

// Events returns outbox events after afterID, oldest first. An event
// becomes visible when its transaction commits, and on MySQL transactions
// commit in another order than they numbered their events: a gap below the
// newest event may still fill (see OpenWriters).
func (s *Store) Events(ctx context.Context, afterID int64, limit int) ([]tradeunit.Event, error) {
	return s.queryEvents(ctx, "store.Events", nil,
		"SELECT "+eventColumns+" FROM order_events WHERE id > ? ORDER BY id LIMIT ?", afterID, limit)
}

// eventsInChunk bounds the ids of one EventsIn query, well under SQLite's
// limit on a statement's parameters.
const eventsInChunk = 500

// EventsIn returns those of the events ids that exist now, oldest first:
// how a relay learns whether a gap it saw has filled.
func (s *Store) EventsIn(ctx context.Context, ids []int64) ([]tradeunit.Event, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var out []tradeunit.Event
	for chunk := range slices.Chunk(ids, eventsInChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		var err error
		out, err = s.queryEvents(ctx, "store.EventsIn", out,
			"SELECT "+eventColumns+" FROM order_events WHERE id IN "+placeholders(len(chunk))+" ORDER BY id", args...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
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
// committed or never will: a gap is final, and the set is empty. On MySQL
// it is every transaction information_schema.INNODB_TRX lists, of any
// database on the server and read-only ones included: more than the
// writers of this outbox, which only makes a relay wait a little longer.
func (s *Store) OpenWriters(ctx context.Context, since time.Time) (tradeunit.Writers, error) {
	const op = "store.OpenWriters"
	if s.dialect.Name() != "mysql" {
		return nil, nil
	}
	// INNODB_TRX read before since+trxViewLag may show an instant before
	// since, and miss a transaction that began in between and numbered an
	// event below the gap; waiting until then makes whatever it shows
	// reflect an instant at or after since.
	if wait := time.Until(since.Add(trxViewLag)); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, s.fail(op, ctx.Err())
		case <-timer.C:
		}
	}
	rows, err := s.write.QueryContext(ctx, "SELECT trx_id FROM information_schema.INNODB_TRX")
	if err != nil {
		return nil, s.trxFail(op, err)
	}
	defer rows.Close()
	var w tradeunit.Writers
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.fail(op, err)
		}
		w = append(w, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return w, nil
}

// WritersEnded reports whether every transaction of w has ended. A stale
// INNODB_TRX can only list a transaction that has ended (a trx_id is never
// reused by a writer), so the answer is late, never early.
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
