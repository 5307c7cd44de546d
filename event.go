package tradeunit

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventSchema is the version of OrderEvent's JSON. A consumer refuses an
// event of a newer schema than it knows instead of guessing at it.
const EventSchema = 1

// OrderEvent is one committed state change of an order as it leaves its
// unit: the versioned JSON published on the event bus, one message per
// event. It carries the order as it stood right after the change (and the
// refund a REFUND_CREATED made), so a consumer can keep a copy of every order
// by applying events alone; Order.Version orders an order's events, so a
// replayed or reordered event never takes an order back.
//
// The schema (JSON field: meaning):
//
//	schema: EventSchema; id: "<unit>-<seq>", unique across units, the bus's
//	message id; unit, seq: the unit and the event's number in its outbox
//	(increasing with each order's changes; across orders in no promised
//	order); type: ORDER_CREATED, ORDER_PAID, ORDER_CLOSED, REFUND_CREATED;
//	time: when the change was made; order: EventOrder; refund: EventRefund,
//	only on REFUND_CREATED.
type OrderEvent struct {
	Schema int          `json:"schema"`
	ID     string       `json:"id"`
	Unit   UnitID       `json:"unit"`
	Seq    int64        `json:"seq"`
	Type   EventType    `json:"type"`
	Time   time.Time    `json:"time"`
	Order  EventOrder   `json:"order"`
	Refund *EventRefund `json:"refund,omitempty"`
}

// EventID returns the id of a unit's outbox event seq: "<unit>-<seq>".
func EventID(unit UnitID, seq int64) string { return fmt.Sprintf("%d-%d", unit, seq) }

// EventOrder is an order as an event carries it. Amounts are in the
// currency's smallest unit; unset times are omitted.
type EventOrder struct {
	OrderNo     string      `json:"order_no"`
	Mchid       string      `json:"mchid"`
	OutTradeNo  string      `json:"out_trade_no"`
	Description string      `json:"description"`
	Total       int64       `json:"total"`
	Currency    string      `json:"currency"`
	State       TradeState  `json:"trade_state"`
	PaymentID   string      `json:"payment_id,omitempty"`
	Refunded    int64       `json:"refunded"`
	CloseReason CloseReason `json:"close_reason,omitempty"`
	CreateTime  time.Time   `json:"create_time"`
	UpdateTime  time.Time   `json:"update_time"`
	SuccessTime time.Time   `json:"success_time,omitzero"`
	CloseTime   time.Time   `json:"close_time,omitzero"`
	// Version counts the order's changes: 1 when created, one more with
	// each change.
	Version int64 `json:"version"`
}

// EventRefund is a refund as a REFUND_CREATED event carries it.
type EventRefund struct {
	RefundID    string    `json:"refund_id"`
	OutRefundNo string    `json:"out_refund_no"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Reason      string    `json:"reason,omitempty"`
	CreateTime  time.Time `json:"create_time"`
}

// NewEventOrder returns the event's copy of o at version v.
func NewEventOrder(o *Order, v int64) EventOrder {
	return EventOrder{OrderNo: o.OrderNo, Mchid: o.Mchid, OutTradeNo: o.OutTradeNo, Description: o.Description,
		Total: o.Amount.Total, Currency: o.Amount.Currency, State: o.State, PaymentID: o.PaymentID,
		Refunded: o.Refunded, CloseReason: o.CloseReason, CreateTime: o.CreateTime, UpdateTime: o.UpdateTime,
		SuccessTime: o.SuccessTime, CloseTime: o.CloseTime, Version: v}
}

// NewEventRefund returns the event's copy of r.
func NewEventRefund(r *Refund) *EventRefund {
	return &EventRefund{RefundID: r.RefundID, OutRefundNo: r.OutRefundNo, Amount: r.Amount.Refund,
		Currency: r.Amount.Currency, Reason: r.Reason, CreateTime: r.CreateTime}
}

// Outbox is a unit store's outbox as the unit's event relay reads it. Events
// get their number (Event.ID) when inserted but become visible when their
// transaction commits, and on MySQL concurrent transactions commit in
// another order than they numbered: a relay that sees seq 12 but not 11 does
// not know whether 11 is still to commit or was rolled back. OpenWriters
// and WritersEnded answer that: once every write transaction that was open
// after a gap was seen has ended, whatever of the gap is still missing will
// never appear. The relay's lease and its cursor are one row of the same
// storage, so a relay that lost its lease cannot move the cursor.
type Outbox interface {
	// ReadOutbox returns, in one consistent read, the events of the ranges
	// gaps that exist now and up to limit events with ID > afterID, oldest
	// first. One read for both is what keeps an order's events in order: an
	// event of a gap that commits late is read together with any later
	// event of its order, never after it.
	ReadOutbox(ctx context.Context, afterID int64, limit int, gaps []IDRange) ([]Event, error)
	// OpenWriters names every write transaction that was open at since
	// and has not ended: those that may still commit an event numbered
	// before since. It may wait until it can say so (MySQL's view of its
	// transactions lags behind them). On a storage with one writer at a
	// time (SQLite) it is always empty, at once. Errors: SYSTEM_ERROR, also
	// when the storage does not let the store see its transactions (the
	// message says which privilege is missing).
	OpenWriters(ctx context.Context, since time.Time) (Writers, error)
	// WritersEnded reports whether every transaction of w has ended.
	WritersEnded(ctx context.Context, w Writers) (bool, error)
	// LastEventID returns the highest event id written (0: none), for the
	// relay's backlog.
	LastEventID(ctx context.Context) (int64, error)
	// AcquireRelay takes or renews the relay lease name for holder until
	// now+ttl and returns the relay's cursor: every event up to it was
	// published. Errors: LEASE_HELD (another holder's lease has not expired;
	// the message names it).
	AcquireRelay(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (cursor int64, err error)
	// SaveRelayCursor moves the cursor of relay lease name forward to
	// cursor if holder still holds it. Errors: LEASE_HELD when it does not
	// (nothing written).
	SaveRelayCursor(ctx context.Context, name, holder string, cursor int64, now time.Time) error
	// ReleaseRelay gives up holder's lease (a clean stop), so that another
	// relay takes over at once.
	ReleaseRelay(ctx context.Context, name, holder string) error
}

// IDRange is the event ids Lo..Hi, both included.
type IDRange struct{ Lo, Hi int64 }

// Writers names a set of open write transactions (see Outbox.OpenWriters).
type Writers []string

// ErrNoSnapshot is in the chain of Event.OrderEvent's error for an outbox
// row written before events carried the order's snapshot.
var ErrNoSnapshot = errors.New("outbox event carries no order snapshot")

// OrderEvent returns the event as it leaves unit: e's payload, the order's
// snapshot (and the refund of a REFUND_CREATED), with its identity. Errors:
// SYSTEM_ERROR for a payload that is not a snapshot, such as one of the
// rows written before the outbox carried snapshots.
func (e Event) OrderEvent(unit UnitID) (OrderEvent, error) {
	const op = "Event.OrderEvent"
	var p struct {
		Order  *EventOrder  `json:"order"`
		Refund *EventRefund `json:"refund"`
	}
	if err := json.Unmarshal([]byte(e.Payload), &p); err != nil {
		return OrderEvent{}, &Error{Code: CodeInternal, Op: op, Err: err,
			Message: fmt.Sprintf("outbox event %d of unit %s has a payload that is not JSON", e.ID, unit)}
	}
	if p.Order == nil {
		return OrderEvent{}, &Error{Code: CodeInternal, Op: op, Err: ErrNoSnapshot, Message: fmt.Sprintf(
			"outbox event %d of unit %s carries no order snapshot: it was written before events carried one, and cannot be published", e.ID, unit)}
	}
	return OrderEvent{Schema: EventSchema, ID: EventID(unit, e.ID), Unit: unit, Seq: e.ID, Type: e.Type,
		Time: e.Time, Order: *p.Order, Refund: p.Refund}, nil
}

// MerchantTotals are one merchant's totals in one currency over a time
// range: what reconciliation compares between the units and the query store.
type MerchantTotals struct {
	Mchid    string `json:"mchid"`
	Currency string `json:"currency"`
	// Created: orders created in the range.
	Created int64 `json:"created"`
	// Paid, PaidAmount: orders paid in the range (their success time).
	Paid       int64 `json:"paid"`
	PaidAmount int64 `json:"paid_amount"`
	// Refunds, RefundAmount: refunds made in the range.
	Refunds      int64 `json:"refunds"`
	RefundAmount int64 `json:"refund_amount"`
}

// TotalsReader computes merchants' totals over [from, to), ordered by mchid
// then currency, the probe merchant's excluded. A unit's store and the query
// store both implement it: reconciliation compares the two. Errors:
// PARAM_ERROR if from is not before to.
type TotalsReader interface {
	Totals(ctx context.Context, from, to time.Time) ([]MerchantTotals, error)
}

// SumTotals adds up totals of the same merchant and currency (one entry per
// unit, or per aggregate a store reads) and orders them by mchid, then
// currency, bytewise.
func SumTotals(in []MerchantTotals) []MerchantTotals {
	type key struct{ mchid, currency string }
	sums := map[key]*MerchantTotals{}
	for _, t := range in {
		k := key{t.Mchid, t.Currency}
		s := sums[k]
		if s == nil {
			s = &MerchantTotals{Mchid: t.Mchid, Currency: t.Currency}
			sums[k] = s
		}
		s.Created += t.Created
		s.Paid += t.Paid
		s.PaidAmount += t.PaidAmount
		s.Refunds += t.Refunds
		s.RefundAmount += t.RefundAmount
	}
	out := make([]MerchantTotals, 0, len(sums))
	for _, s := range sums {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b MerchantTotals) int {
		return cmp.Or(strings.Compare(a.Mchid, b.Mchid), strings.Compare(a.Currency, b.Currency))
	})
	return out
}
