package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"tradeunit"
	"tradeunit/store/internal/sqldb"
)

const orderColumns = `order_no, mchid, out_trade_no, description, total, currency, trade_state,
	payment_id, refunded, abandoned_units, create_time, update_time, success_time, close_time, attempt, close_reason, version`

type rowScanner interface{ Scan(dest ...any) error }

func scanOrder(row rowScanner) (*tradeunit.Order, error) {
	var (
		o                                  tradeunit.Order
		abandoned                          string
		created, updated, success, closeAt int64
		attempt                            sqldb.Uint64
	)
	err := row.Scan(&o.OrderNo, &o.Mchid, &o.OutTradeNo, &o.Description, &o.Amount.Total, &o.Amount.Currency,
		&o.State, &o.PaymentID, &o.Refunded, &abandoned, &created, &updated, &success, &closeAt, &attempt, &o.CloseReason, &o.Version)
	if err != nil {
		return nil, err
	}
	o.Attempt = uint64(attempt)
	o.CreateTime, o.UpdateTime = tradeunit.FromUnixMicros(created), tradeunit.FromUnixMicros(updated)
	o.SuccessTime, o.CloseTime = tradeunit.FromUnixMicros(success), tradeunit.FromUnixMicros(closeAt)
	o.AbandonedUnits, err = parseUnits(abandoned)
	return &o, err
}

// CreateOrder inserts o and its ORDER_CREATED event, or returns the order
// that already holds (o.Mchid, o.OutTradeNo); a superseded attempt is
// refused.
func (s *Store) CreateOrder(ctx context.Context, o *tradeunit.Order) (*tradeunit.Order, bool, error) {
	r := s.CreateOrders(ctx, []*tradeunit.Order{o})[0]
	return r.Stored, r.Created, r.Err
}

// CreateOrders creates orders in one transaction; see tradeunit.Store. A
// batch of new keys is written with one statement per table (insertAll);
// one with a taken key or a superseded attempt goes order by order. A
// statement that breaks a unique key fails alone on both SQLite and MySQL
// (the transaction goes on), so a duplicate costs its neighbours nothing;
// it is answered after the commit with the order that holds the key.
func (s *Store) CreateOrders(ctx context.Context, orders []*tradeunit.Order) []tradeunit.CreateResult {
	const op = "store.CreateOrder"
	results := make([]tradeunit.CreateResult, len(orders))
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		clear(results) // the transaction may be retried
		if len(orders) > 1 {
			all, err := s.insertAll(ctx, tx, orders)
			if err != nil {
				return err
			}
			if all {
				for i := range results {
					results[i].Created = true
				}
				return nil
			}
		}
		for i, o := range orders {
			switch err := s.insertOrder(ctx, tx, o); {
			case err == nil:
				results[i].Created = true
			case errors.Is(err, errDuplicate), tradeunit.IsCode(err, tradeunit.CodeAttemptSuperseded):
				results[i].Err = err
			default:
				return err
			}
		}
		return nil
	})
	for i, o := range orders {
		r := &results[i]
		switch {
		case err != nil:
			*r = tradeunit.CreateResult{Err: err}
		case r.Created:
			r.Stored = createdOrder(o)
		case errors.Is(r.Err, errDuplicate):
			existing, err := s.OrderByOutTradeNo(ctx, o.Mchid, o.OutTradeNo)
			switch {
			case tradeunit.IsCode(err, tradeunit.CodeNotFound):
				// The duplicate was an order number, not the merchant's
				// key: a sequence bug, never a caller's mistake.
				*r = tradeunit.CreateResult{Err: tradeunit.Internal(op, err)}
			case err != nil:
				*r = tradeunit.CreateResult{Err: err} // the storage failed the read: nothing was written
			default:
				*r = tradeunit.CreateResult{Stored: existing}
			}
		}
	}
	return results
}

// insertOrder writes o and its ORDER_CREATED event in tx: errDuplicate if
// its key or number is taken, ATTEMPT_SUPERSEDED if its attempt was
// superseded, and nothing written either way.
func (s *Store) insertOrder(ctx context.Context, tx *sql.Tx, o *tradeunit.Order) error {
	const op = "store.CreateOrder"
	if o.Attempt != 0 {
		// A locking read: a SupersedeAttempt of this attempt either
		// committed before (and is seen here) or waits for this
		// transaction and then sees its order (see SupersedeAttempt).
		var n int
		err := s.stmts.queryRowFixed(ctx, tx, "SELECT COUNT(*) FROM superseded_attempts WHERE mchid = ? AND out_trade_no = ? AND attempt = ?"+s.dialect.ForUpdate(),
			o.Mchid, o.OutTradeNo, s.dialect.Uint64(o.Attempt)).Scan(&n)
		if err != nil {
			return s.fail(op, err)
		}
		if n > 0 {
			return tradeunit.Errorf(tradeunit.CodeAttemptSuperseded, "attempt %d at out_trade_no %s was superseded", o.Attempt, o.OutTradeNo)
		}
	}
	_, err := s.stmts.execFixed(ctx, tx, `INSERT INTO orders (order_no, mchid, out_trade_no, description, total, currency,
		trade_state, abandoned_units, create_time, update_time, attempt, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		o.OrderNo, o.Mchid, o.OutTradeNo, o.Description, o.Amount.Total, o.Amount.Currency,
		string(tradeunit.StateNotPay), formatUnits(o.AbandonedUnits), tradeunit.UnixMicros(o.CreateTime), tradeunit.UnixMicros(o.CreateTime),
		s.dialect.Uint64(o.Attempt))
	if err != nil {
		if s.dialect.IsUniqueViolation(err) {
			return errDuplicate
		}
		return s.fail(op, err)
	}
	// After the insert: see insertEvent.
	err = s.insertEvent(ctx, tx, tradeunit.EventOrderCreated, o.CreateTime, createdOrder(o), nil)
	if err != nil {
		return s.fail(op, err)
	}
	return nil
}

// SupersedeAttempt returns the order of (mchid, outTradeNo), or records
// attempt as superseded. On MySQL both statements take locks that a
// concurrent CreateOrder of the key also takes (the superseded row's index
// range, the order's unique key), so the two are serialized: whichever
// commits second sees the other. SQLite has one writer at a time.
func (s *Store) SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*tradeunit.Order, error) {
	const op = "store.SupersedeAttempt"
	if attempt == 0 {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "attempt 0 cannot be superseded")
	}
	var found *tradeunit.Order
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		found = nil
		if _, err := tx.ExecContext(ctx, s.dialect.InsertIgnore()+" INTO superseded_attempts (mchid, out_trade_no, attempt, create_time) VALUES (?, ?, ?, ?)",
			mchid, outTradeNo, s.dialect.Uint64(attempt), tradeunit.UnixMicros(time.Now())); err != nil {
			return s.fail(op, err)
		}
		o, err := scanOrder(tx.QueryRowContext(ctx, "SELECT "+orderColumns+" FROM orders WHERE mchid = ? AND out_trade_no = ?"+s.dialect.ForUpdate(),
			mchid, outTradeNo))
		switch {
		case isNoRows(err):
			return nil
		case err != nil:
			return s.fail(op, err)
		}
		found = o
		return errFound // the order exists: nothing to record
	})
	if errors.Is(err, errFound) {
		return found, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, notFound("order", mchid+"/"+outTradeNo)
}

// errFound rolls a transaction back that found what it looked for.
var errFound = errors.New("found")

// CloseSuperseded closes an orphan with CloseSuperseded. winner is not
// stored: the event carries the order's snapshot, which has no place for it.
func (s *Store) CloseSuperseded(ctx context.Context, mchid, orderNo, winner string, at time.Time) (*tradeunit.Order, error) {
	return s.transition(ctx, closeSupersededChange(mchid, orderNo, at))
}

// OrdersAfter returns orders by number after afterNo.
func (s *Store) OrdersAfter(ctx context.Context, afterNo string, limit int) ([]*tradeunit.Order, error) {
	const op = "store.OrdersAfter"
	if limit < 1 {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "limit must be positive, got %d", limit)
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+orderColumns+" FROM orders WHERE order_no > ? AND mchid <> ? ORDER BY order_no LIMIT ?",
		afterNo, tradeunit.ProbeMchid, limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []*tradeunit.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// errDuplicate signals a unique-key violation out of a transaction; it never
// leaves the package.
var errDuplicate = errors.New("duplicate key")

// Order returns an order by number.
func (s *Store) Order(ctx context.Context, orderNo string) (*tradeunit.Order, error) {
	return s.readOrder(ctx, "store.Order", "order_no = ?", orderNo)
}

// OrderByOutTradeNo returns an order by the merchant's order number.
func (s *Store) OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*tradeunit.Order, error) {
	return s.readOrder(ctx, "store.OrderByOutTradeNo", "mchid = ? AND out_trade_no = ?", mchid, outTradeNo)
}

// readOrder is queryOrder on the read pool, its statement prepared there.
func (s *Store) readOrder(ctx context.Context, op, where string, args ...any) (*tradeunit.Order, error) {
	return s.orderOf(op, args, s.reads.queryRow(ctx, s.read, "SELECT "+orderColumns+" FROM orders WHERE "+where, args...))
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) queryOrder(ctx context.Context, db querier, op, where string, args ...any) (*tradeunit.Order, error) {
	return s.orderOf(op, args, db.QueryRowContext(ctx, "SELECT "+orderColumns+" FROM orders WHERE "+where, args...))
}

// orderOf scans row, the read of one order by args.
func (s *Store) orderOf(op string, args []any, row *sql.Row) (*tradeunit.Order, error) {
	o, err := scanOrder(row)
	if isNoRows(err) {
		return nil, notFound("order", strings.Join(strArgs(args), "/"))
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	return o, nil
}

// PayOrder moves a NOTPAY order to SUCCESS with its ORDER_PAID event.
func (s *Store) PayOrder(ctx context.Context, mchid, orderNo, paymentID string, at time.Time) (*tradeunit.Order, error) {
	return s.transition(ctx, payChange(mchid, orderNo, paymentID, at))
}

// CloseOrder moves a NOTPAY order to CLOSED with its ORDER_CLOSED event.
func (s *Store) CloseOrder(ctx context.Context, mchid, orderNo string, at time.Time) (*tradeunit.Order, error) {
	return s.transition(ctx, closeChange(mchid, orderNo, at))
}

var (
	// errGuard signals that a guarded update matched no row; it never leaves
	// the package.
	errGuard = errors.New("guard matched no row")
	// errGuardUnexplained: the guard failed but the state allows the move;
	// states never return to NOTPAY, so this is a bug.
	errGuardUnexplained = errors.New("guarded update failed in a state that allows it")
)

func formatUnits(units []tradeunit.UnitID) string {
	parts := make([]string, len(units))
	for i, u := range units {
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

func parseUnits(s string) ([]tradeunit.UnitID, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]tradeunit.UnitID, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, err
		}
		out[i] = tradeunit.UnitID(v)
	}
	return out, nil
}

func strArgs(args []any) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i], _ = a.(string)
	}
	return out
}

// CreatedSince counts the orders created at or after t, probe orders
// excluded: how busy the unit is, for operators.
func (s *Store) CreatedSince(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE create_time >= ? AND mchid <> ?",
		tradeunit.UnixMicros(t), tradeunit.ProbeMchid).Scan(&n)
	if err != nil {
		return 0, s.fail("store.CreatedSince", err)
	}
	return n, nil
}
