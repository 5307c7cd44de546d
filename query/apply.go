package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"tradeunit"
)

// ErrNewerSchema marks an event of a schema newer than this build knows
// (tradeunit.EventSchema): the consumer must stop and wait for an upgrade,
// not skip it. Apply's error wraps it (errors.Is).
var ErrNewerSchema = errors.New("event schema newer than this build knows")

// Apply applies a batch of events in one transaction, all or nothing, and
// moves each unit's watermark. It is idempotent: an order's row changes
// only for an event of a higher version than the stored one (a replayed or
// reordered event never takes an order back), a refund is inserted once,
// and the watermark only moves forward. Events of the probe merchant move
// the watermark and are otherwise ignored. Times are kept to the
// microsecond.
//
// Errors: INVALID_REQUEST wrapping ErrNewerSchema if an event has a newer
// schema, PARAM_ERROR for a malformed event (nothing of the batch applied
// in both cases, the message names the event); QUERY_STORE_UNAVAILABLE.
func (s *Store) Apply(ctx context.Context, events []tradeunit.OrderEvent) error {
	for i := range events {
		if err := checkEvent(&events[i]); err != nil {
			return err
		}
	}
	if len(events) == 0 {
		return nil
	}
	return s.writeTx(ctx, "query.Apply", func(tx *sql.Tx) error {
		for i := range events {
			if err := applyEvent(ctx, tx, &events[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkEvent refuses an event Apply cannot store faithfully.
func checkEvent(e *tradeunit.OrderEvent) error {
	bad := func(format string, args ...any) error {
		return tradeunit.Errorf(tradeunit.CodeParamError, "event %q: "+format, append([]any{e.ID}, args...)...)
	}
	if e.Schema > tradeunit.EventSchema {
		return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Err: ErrNewerSchema,
			Message: fmt.Sprintf("event %q has schema %d, newer than the %d this query store knows: upgrade it before consuming further (nothing of the batch was applied)",
				e.ID, e.Schema, tradeunit.EventSchema)}
	}
	o := &e.Order
	switch {
	case e.Schema < 1:
		return bad("schema %d: want 1..%d", e.Schema, tradeunit.EventSchema)
	case e.Seq < 1:
		return bad("seq %d: want 1 or more", e.Seq)
	case e.Time.IsZero():
		return bad("no time")
	case o.OrderNo == "" || o.Mchid == "":
		return bad("the order has no order_no or mchid")
	case o.Version < 1:
		return bad("order version %d: want 1 or more", o.Version)
	case o.CreateTime.IsZero():
		return bad("the order has no create_time")
	}
	switch e.Type {
	case tradeunit.EventOrderCreated, tradeunit.EventOrderPaid, tradeunit.EventOrderClosed:
	case tradeunit.EventRefundCreated:
		if e.Refund == nil || e.Refund.RefundID == "" || e.Refund.CreateTime.IsZero() {
			return bad("REFUND_CREATED without a refund, its refund_id or its create_time")
		}
	default:
		return bad("unknown type %q", e.Type)
	}
	return nil
}

func applyEvent(ctx context.Context, tx *sql.Tx, e *tradeunit.OrderEvent) error {
	if !tradeunit.IsProbe(e.Order.Mchid) {
		o := &e.Order
		// create_time is the listing's key: it is never updated, so
		// that a page's cursor stays valid while orders change.
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (order_no, unit, mchid, out_trade_no, description,
			total, currency, trade_state, payment_id, refunded, close_reason, create_time, update_time,
			success_time, close_time, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (order_no) DO UPDATE SET unit = excluded.unit, mchid = excluded.mchid,
				out_trade_no = excluded.out_trade_no, description = excluded.description,
				total = excluded.total, currency = excluded.currency, trade_state = excluded.trade_state,
				payment_id = excluded.payment_id, refunded = excluded.refunded,
				close_reason = excluded.close_reason, update_time = excluded.update_time,
				success_time = excluded.success_time, close_time = excluded.close_time,
				version = excluded.version
			WHERE orders.version < excluded.version`,
			o.OrderNo, int64(e.Unit), o.Mchid, o.OutTradeNo, o.Description, o.Total, o.Currency,
			string(o.State), o.PaymentID, o.Refunded, string(o.CloseReason), micros(o.CreateTime),
			micros(o.UpdateTime), nullMicros(o.SuccessTime), nullMicros(o.CloseTime), o.Version); err != nil {
			return err
		}
		if r := e.Refund; r != nil && e.Type == tradeunit.EventRefundCreated {
			if _, err := tx.ExecContext(ctx, `INSERT INTO refunds (refund_id, mchid, out_refund_no, order_no,
				amount, currency, reason, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (refund_id) DO NOTHING`,
				r.RefundID, o.Mchid, r.OutRefundNo, o.OrderNo, r.Amount, r.Currency, r.Reason, micros(r.CreateTime)); err != nil {
				return err
			}
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO watermarks (unit, seq, event_time) VALUES ($1, $2, $3)
		ON CONFLICT (unit) DO UPDATE SET
			seq = CASE WHEN excluded.seq > watermarks.seq THEN excluded.seq ELSE watermarks.seq END,
			event_time = CASE WHEN excluded.event_time > watermarks.event_time THEN excluded.event_time ELSE watermarks.event_time END`,
		int64(e.Unit), e.Seq, micros(e.Time))
	return err
}

// MarkCaughtUp records that the consumer had applied every event on the
// bus at time at: the store is complete up to at. An older mark than the
// stored one changes nothing. Errors: QUERY_STORE_UNAVAILABLE.
func (s *Store) MarkCaughtUp(ctx context.Context, at time.Time) error {
	if at.IsZero() {
		return tradeunit.Errorf(tradeunit.CodeParamError, "MarkCaughtUp: the time is zero")
	}
	return s.writeTx(ctx, "query.MarkCaughtUp", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO caught_up (id, marked_at) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET marked_at = excluded.marked_at WHERE caught_up.marked_at < excluded.marked_at`,
			micros(at))
		return err
	})
}

// AsOf returns the instant the store is known complete up to: the
// caught-up mark if it is newer, else the time of the newest event applied
// (the zero time when there is neither). A reader's lag is now - AsOf.
// Errors: QUERY_STORE_UNAVAILABLE.
func (s *Store) AsOf(ctx context.Context) (time.Time, error) {
	var mark, newest sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT (SELECT MAX(marked_at) FROM caught_up),
		(SELECT MAX(event_time) FROM watermarks)`).Scan(&mark, &newest)
	if err != nil {
		return time.Time{}, s.fail("query.AsOf", err)
	}
	return tradeunit.FromUnixMicros(max(mark.Int64, newest.Int64)), nil
}

// Watermark is how far the store has applied one unit's events.
type Watermark struct {
	Unit tradeunit.UnitID `json:"unit"`
	// Seq is the highest outbox seq applied; Time the time of the newest
	// event applied.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
}

// Watermarks returns every unit's watermark, by unit. Errors:
// QUERY_STORE_UNAVAILABLE.
func (s *Store) Watermarks(ctx context.Context) ([]Watermark, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT unit, seq, event_time FROM watermarks ORDER BY unit")
	if err != nil {
		return nil, s.fail("query.Watermarks", err)
	}
	defer rows.Close()
	var out []Watermark
	for rows.Next() {
		var w Watermark
		var unit, t int64
		if err := rows.Scan(&unit, &w.Seq, &t); err != nil {
			return nil, s.fail("query.Watermarks", err)
		}
		w.Unit, w.Time = tradeunit.UnitID(unit), tradeunit.FromUnixMicros(t)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("query.Watermarks", err)
	}
	return out, nil
}

// micros encodes t as the stored Unix microseconds.
func micros(t time.Time) int64 { return tradeunit.UnixMicros(t) }

// nullMicros is micros with NULL for the zero time (unset).
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}
