package query

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"tradeunit"
)

// The bounds of ListQuery.Limit.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// ListQuery selects one page of a merchant's orders.
type ListQuery struct {
	Mchid string
	// CreateFrom, CreateTo bound the orders' create time, [from, to); a
	// zero time leaves that side open.
	CreateFrom, CreateTo time.Time
	// State selects orders in one state; empty selects all.
	State tradeunit.TradeState
	// Limit is the page's size, 1..MaxLimit; 0 is DefaultLimit.
	Limit int
	// Cursor is the previous page's NextCursor; empty for the first page.
	Cursor string
}

// OrderPage is one page of a listing.
type OrderPage struct {
	Orders []tradeunit.EventOrder `json:"orders"`
	// NextCursor continues the listing; empty on its last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// ListOrders returns a page of q.Mchid's orders matching q, by create time
// then order number. Pages are keyset pages: the cursor holds the last
// order's (create_time, order_no), which never change, so that paging is
// stable while orders are applied: every order that existed and matched
// when the first page was read comes exactly once, and orders applied
// meanwhile come at most once (at the end when their create time is
// later). An order matches by its state when its page is read.
//
// Errors: PARAM_ERROR for a bad query or a cursor that is malformed or was
// made for another query; QUERY_STORE_UNAVAILABLE.
func (s *Store) ListOrders(ctx context.Context, q ListQuery) (OrderPage, error) {
	limit, err := checkList(q)
	if err != nil {
		return OrderPage{}, err
	}
	where := []string{"mchid = $1"}
	args := []any{q.Mchid}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !q.CreateFrom.IsZero() {
		where = append(where, "create_time >= "+arg(micros(q.CreateFrom)))
	}
	if !q.CreateTo.IsZero() {
		where = append(where, "create_time < "+arg(micros(q.CreateTo)))
	}
	if q.State != "" {
		where = append(where, "trade_state = "+arg(string(q.State)))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor, queryHash(q))
		if err != nil {
			return OrderPage{}, err
		}
		t, no := arg(c.createTime), arg(c.orderNo)
		where = append(where, "(create_time > "+t+" OR (create_time = "+t+" AND order_no > "+no+"))")
	}
	// One more than the page tells whether there is a next page.
	rows, err := s.read.QueryContext(ctx, "SELECT "+orderColumns+" FROM orders WHERE "+strings.Join(where, " AND ")+
		" ORDER BY create_time, order_no LIMIT "+arg(limit+1), args...)
	if err != nil {
		return OrderPage{}, s.fail("query.ListOrders", err)
	}
	orders, err := scanOrders(rows)
	if err != nil {
		return OrderPage{}, s.fail("query.ListOrders", err)
	}
	page := OrderPage{Orders: orders}
	if len(orders) > limit {
		page.Orders = orders[:limit]
		last := page.Orders[limit-1]
		page.NextCursor = encodeCursor(cursor{micros(last.CreateTime), last.OrderNo}, queryHash(q))
	}
	return page, nil
}

func checkList(q ListQuery) (limit int, err error) {
	switch {
	case q.Mchid == "":
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "the listing names no merchant")
	case q.Limit < 0 || q.Limit > MaxLimit:
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "limit must be between 1 and %d, got %d", MaxLimit, q.Limit)
	case !q.CreateFrom.IsZero() && !q.CreateTo.IsZero() && !q.CreateFrom.Before(q.CreateTo):
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "create_time_start %s must be before create_time_end %s",
			q.CreateFrom.Format(time.RFC3339), q.CreateTo.Format(time.RFC3339))
	}
	switch q.State {
	case "", tradeunit.StateNotPay, tradeunit.StateSuccess, tradeunit.StateRefund, tradeunit.StateClosed:
	default:
		return 0, tradeunit.Errorf(tradeunit.CodeParamError, "trade_state %q: want NOTPAY, SUCCESS, REFUND or CLOSED", q.State)
	}
	if q.Limit == 0 {
		return DefaultLimit, nil
	}
	return q.Limit, nil
}

// cursor is a listing's position: the last order returned.
type cursor struct {
	createTime int64
	orderNo    string
}

// cursorVersion leads a cursor's bytes, so that its format can change.
const cursorVersion = 1

// maxOrderNo bounds the order number a cursor may hold.
const maxOrderNo = 64

// encodeCursor writes c as base64url of: version, create time (8 bytes),
// the query's hash (4 bytes), order number. The hash ties a cursor to the
// query that made it: continuing with other filters would skip or repeat.
func encodeCursor(c cursor, hash uint32) string {
	b := make([]byte, 0, 13+len(c.orderNo))
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.createTime))
	b = binary.BigEndian.AppendUint32(b, hash)
	b = append(b, c.orderNo...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, hash uint32) (cursor, error) {
	bad := func(why string) error {
		return tradeunit.Errorf(tradeunit.CodeParamError, "cursor %q %s: pass the next_cursor of the previous page unchanged, with the same filters", s, why)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 14 || len(b) > 13+maxOrderNo || b[0] != cursorVersion {
		return cursor{}, bad("is not a cursor")
	}
	if binary.BigEndian.Uint32(b[9:13]) != hash {
		return cursor{}, bad("was made for another query")
	}
	no := b[13:]
	for _, c := range no {
		if c <= ' ' || c >= 0x7f {
			return cursor{}, bad("is not a cursor")
		}
	}
	return cursor{int64(binary.BigEndian.Uint64(b[1:9])), string(no)}, nil
}

// queryHash is the hash of what selects a listing's orders (not its
// limit: a client may change the page size while paging).
func queryHash(q ListQuery) uint32 {
	h := fnv.New32a()
	for _, s := range []string{q.Mchid, strconv.FormatInt(micros(q.CreateFrom), 10),
		strconv.FormatInt(micros(q.CreateTo), 10), string(q.State)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

// orderColumns are the columns scanOrders reads, in its order.
const orderColumns = `order_no, mchid, out_trade_no, description, total, currency, trade_state, payment_id,
	refunded, close_reason, create_time, update_time, success_time, close_time, version`

func scanOrders(rows *sql.Rows) ([]tradeunit.EventOrder, error) {
	defer rows.Close()
	orders := []tradeunit.EventOrder{}
	for rows.Next() {
		var o tradeunit.EventOrder
		var state, closeReason string
		var create, update int64
		var success, closed sql.NullInt64
		if err := rows.Scan(&o.OrderNo, &o.Mchid, &o.OutTradeNo, &o.Description, &o.Total, &o.Currency, &state,
			&o.PaymentID, &o.Refunded, &closeReason, &create, &update, &success, &closed, &o.Version); err != nil {
			return nil, err
		}
		o.State, o.CloseReason = tradeunit.TradeState(state), tradeunit.CloseReason(closeReason)
		o.CreateTime, o.UpdateTime = tradeunit.FromUnixMicros(create), tradeunit.FromUnixMicros(update)
		o.SuccessTime, o.CloseTime = fromNull(success), fromNull(closed)
		orders = append(orders, o)
	}
	return orders, rows.Err()
}
