package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

// inTx runs fn in a write transaction (see sqldb.DB.InTx: contention is
// retried, and only COMMIT can leave the outcome unknown). Every write of
// the Store goes through it, so that the freeze fence is checked in one
// place: fn does not run, and nothing is written, on a frozen storage (see
// Freeze).
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	// The sizes fn's statements missed in the cache are prepared once the
	// write connection is free again (see stmtCache).
	defer s.stmts.prepareWanted(ctx)
	return s.db.InTx(ctx, op, func(tx *sql.Tx) error {
		if err := s.checkNotFrozen(ctx, tx, op); err != nil {
			return err
		}
		if s.passedFence != nil {
			s.passedFence(op)
		}
		return fn(tx)
	})
}

// insertEvent writes one outbox row in the caller's transaction: the event's
// payload is o as it stands after the change (and r, the refund a
// REFUND_CREATED made). Callers insert it after the order's row was written
// (inserted or updated under its guard), never before: the row lock orders
// an order's changes, so an order's later event is numbered after its
// earlier one has committed. That is what lets a relay publish past a gap
// of not yet committed numbers and still keep each order's events in order.
func (s *Store) insertEvent(ctx context.Context, tx *sql.Tx, typ tradeunit.EventType, at time.Time, o *tradeunit.Order, r *tradeunit.Refund) error {
	return s.insertEvents(ctx, tx, []outboxRow{{typ: typ, at: at, order: o, refund: r}})
}

// outboxRow is one event for insertEvents: its type and time, and the
// order (and refund) its payload describes.
type outboxRow struct {
	typ    tradeunit.EventType
	at     time.Time
	order  *tradeunit.Order
	refund *tradeunit.Refund
}

// insertEvents is insertEvent for many events, in one statement: a batch's
// round trip, not one per change. Nothing is written for none.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(rows))
	for _, e := range rows {
		body, err := eventPayload(e.order, e.refund)
		if err != nil {
			return err
		}
		args = append(args, e.order.OrderNo, string(e.typ), body, tradeunit.UnixMicros(e.at))
	}
	_, err := s.stmts.exec(ctx, tx, stmtKey{kind: stmtInsertEvents, rows: len(rows)}, func() string { return insertEventsQuery(len(rows)) }, args...)
	return err
}

// insertEventsQuery is insertEvents' statement for n rows.
func insertEventsQuery(n int) string {
	return "INSERT INTO order_events (order_no, event_type, payload, create_time) VALUES " + valuesList("(?, ?, ?, ?)", n)
}

// valuesList is n copies of row, comma separated.
func valuesList(row string, n int) string {
	var q strings.Builder
	q.Grow(n * (len(row) + 2))
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	return q.String()
}

// eventPayload is an outbox row's payload: the JSON that Event.OrderEvent
// decodes.
func eventPayload(o *tradeunit.Order, r *tradeunit.Refund) (string, error) {
	p := struct {
		Order  tradeunit.EventOrder   `json:"order"`
		Refund *tradeunit.EventRefund `json:"refund,omitempty"`
	}{Order: tradeunit.NewEventOrder(o, o.Version)}
	if r != nil {
		p.Refund = tradeunit.NewEventRefund(r)
	}
	body, err := json.Marshal(p)
	return string(body), err
}

// AllocateSequence reserves n order sequence numbers. The row update takes
// the row's write lock, so concurrent allocators — other replicas of the
// unit included — get disjoint blocks.
func (s *Store) AllocateSequence(ctx context.Context, n int64) (int64, error) {
	if n < 1 {
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "sequence block size must be positive, got %d", n)
	}
	var next int64
	err := s.inTx(ctx, "store.AllocateSequence", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE sequences SET next_value = next_value + ? WHERE name = 'order'", n); err != nil {
			return s.fail("store.AllocateSequence", err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT next_value FROM sequences WHERE name = 'order'").Scan(&next); err != nil {
			return s.fail("store.AllocateSequence", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return next - n, nil
}

func notFound(what, key string) error {
	return tradeunit.Errorf(tradeunit.CodeNotFound, "%s %s does not exist", what, key)
}

// isNoRows reports a missing row.
func isNoRows(err error) bool { return sqldb.IsNoRows(err) }
