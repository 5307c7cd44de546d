package tradeunit

import (
	"context"
	"time"
)

// CreateResult is one order's result of Store.CreateOrders.
type CreateResult struct {
	Stored  *Order
	Created bool
	Err     error
}

// Store is one unit's storage. Every change writes the order row and its
// event row in one local transaction, guarded by the order's current state,
// so that of two concurrent calls at most one wins. The rules of what may
// change (Order.CheckPay, CheckClose, CheckRefund) live in this package; a
// Store applies them under its transaction.
//
// Every change may also fail with UNIT_UNAVAILABLE wrapping ErrStorageFrozen,
// nothing written, while the unit's storage is frozen to move it (see
// sqlstore.Store.Freeze).
type Store interface {
	// CreateOrder inserts o with its ORDER_CREATED event. If an order with
	// the same (Mchid, OutTradeNo) exists, it returns that order and
	// created=false and writes nothing. Errors: ATTEMPT_SUPERSEDED when
	// o.Attempt was superseded (SupersedeAttempt), nothing written.
	CreateOrder(ctx context.Context, o *Order) (stored *Order, created bool, err error)
	// CreateOrders is CreateOrder for many orders in one transaction (group
	// commit): one result per order, in order, each what CreateOrder would
	// have answered for it alone. A duplicate key or a superseded attempt
	// is its own order's result and never fails the others; a failure of
	// the storage fails them all, with nothing written. Two orders of one
	// (Mchid, OutTradeNo) in a batch: the first is created, the second gets
	// it as the existing order.
	CreateOrders(ctx context.Context, orders []*Order) []CreateResult
	// SupersedeAttempt returns the order of (mchid, outTradeNo) if there is
	// one; if not, it records attempt as superseded, so that a CreateOrder
	// carrying it is refused from then on, and answers RESOURCE_NOT_EXISTS.
	// It is serialized with CreateOrder: a create of the attempt either
	// committed before (and is returned) or is refused after.
	SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*Order, error)
	// CloseSuperseded moves a merchant's NOTPAY order to CLOSED with
	// CloseSuperseded and its ORDER_CLOSED event; a closed order is
	// returned as it is. winner, the order that holds the merchant's key,
	// is the caller's to log: the event carries only the order's snapshot.
	// Errors: ORDER_PAID, RESOURCE_NOT_EXISTS.
	CloseSuperseded(ctx context.Context, mchid, orderNo, winner string, at time.Time) (*Order, error)
	// OrdersAfter returns up to limit orders with a number above afterNo,
	// in number order, the probe merchant's excluded: every order the unit
	// holds, for the directory's backfill.
	OrdersAfter(ctx context.Context, afterNo string, limit int) ([]*Order, error)
	// RefundsAfter returns up to limit refunds stored after the cursor
	// after (0: from the first), in the order they were stored, the probe
	// merchant's excluded, and the cursor to go on from.
	RefundsAfter(ctx context.Context, after int64, limit int) (refunds []*Refund, next int64, err error)
	// Order returns an order by number. Errors: RESOURCE_NOT_EXISTS.
	Order(ctx context.Context, orderNo string) (*Order, error)
	// OrderByOutTradeNo returns an order by merchant and merchant order
	// number. Errors: RESOURCE_NOT_EXISTS.
	OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*Order, error)
	// PayOrder moves a merchant's order NOTPAY → SUCCESS. Errors: those of
	// Order.CheckPay, RESOURCE_NOT_EXISTS (also for another merchant's order).
	PayOrder(ctx context.Context, mchid, orderNo, paymentID string, at time.Time) (*Order, error)
	// CloseOrder moves a merchant's order NOTPAY → CLOSED. Errors: those of
	// Order.CheckClose, RESOURCE_NOT_EXISTS (also for another merchant's order).
	CloseOrder(ctx context.Context, mchid, orderNo string, at time.Time) (*Order, error)
	// ChangeOrders is PayOrder and CloseOrder for many changes in one
	// transaction (group commit): one result per change, in order, each
	// what its call alone would have answered had the batch's changes
	// before it just been made, so that two changes of one order in a
	// batch behave as if serialized (a repeated pay is answered as a
	// repeat). A change its order's rules refuse, or whose order does not
	// exist, is its own result and never fails the others; a failure of
	// the storage (a frozen one included) fails them all, with nothing
	// written.
	ChangeOrders(ctx context.Context, changes []OrderChange) []ChangeResult
	// CreateRefund inserts a refund and adds it to its order's refunded sum,
	// moving the order to REFUND. A refund with the same (Mchid, OutRefundNo)
	// that exists is returned with created=false and nothing is written.
	// Errors: those of Order.CheckRefund, RESOURCE_NOT_EXISTS (also for
	// another merchant's order).
	CreateRefund(ctx context.Context, r *Refund) (stored *Refund, created bool, err error)
	// CreateRefunds is CreateRefund for many refunds in one transaction
	// (group commit), as ChangeOrders is for pays: one result per refund,
	// in order, each what CreateRefund alone would have answered after the
	// batch's refunds before it (two refunds of one order in a batch never
	// exceed its total, a repeated refund number is answered with the
	// refund that has it). A refund that is refused is its own result; a
	// failure of the storage fails them all, with nothing written.
	CreateRefunds(ctx context.Context, refunds []*Refund) []RefundResult
	// Refund returns a refund. Errors: RESOURCE_NOT_EXISTS.
	Refund(ctx context.Context, mchid, outRefundNo string) (*Refund, error)
	// AllocateSequence reserves n consecutive order sequence numbers and
	// returns the first. Blocks never overlap, across processes and restarts.
	AllocateSequence(ctx context.Context, n int64) (first int64, err error)
	// BindUnit records that the storage holds unit id, or checks that it
	// does, so that a logic service started with the wrong unit number for
	// its storage refuses to number orders. Errors: INVALID_REQUEST if the
	// storage holds another unit.
	BindUnit(ctx context.Context, id UnitID) error
	// Events returns up to limit outbox events with ID > afterID, oldest
	// first. IDs are assigned at insert, and on MySQL transactions commit in
	// another order, so a gap below the newest ID may still fill: a
	// consumer that must miss nothing resolves gaps with Outbox.
	Events(ctx context.Context, afterID int64, limit int) ([]Event, error)
	// DeleteProbeOrders deletes up to limit orders of the health checker's
	// probe merchant (ProbeMchid) created before createdBefore, with their
	// events and refunds, and returns how many orders it deleted. Orders of
	// every other merchant are never deleted: payment records are kept.
	// Errors: PARAM_ERROR if limit < 1.
	DeleteProbeOrders(ctx context.Context, createdBefore time.Time, limit int) (deleted int, err error)
	// Ping checks that the storage answers.
	Ping(ctx context.Context) error
	// Close releases the storage.
	Close() error
}

// EventType names what happened to an order.
type EventType string

// The events written to the outbox, one per state change.
const (
	EventOrderCreated  EventType = "ORDER_CREATED"
	EventOrderPaid     EventType = "ORDER_PAID"
	EventOrderClosed   EventType = "ORDER_CLOSED"
	EventRefundCreated EventType = "REFUND_CREATED"
)

// Event is one row of a unit's outbox: a state change committed together with
// the order row it describes, for consumers that follow a unit (statistics,
// reconciliation, notifications) without touching the live path.
type Event struct {
	ID      int64
	OrderNo string
	Type    EventType
	Payload string // JSON describing the change
	Time    time.Time
}

// Storage is a unit's storage as its logic service sees it: a primary for
// changes and real-time reads, and the stores a read may use. It may change
// under the service (a failover): every call asks it again. One store that
// serves everything (FixedStorage) or a replicated set that follows the
// storage topology (package store/replicated) implement it.
type Storage interface {
	// Primary returns the store of the unit's primary. Errors:
	// UNIT_UNAVAILABLE when the unit has no primary that can take a change
	// now (down, failing over, fenced, or unable to get a replica's
	// acknowledgement): a definite answer, nothing was written.
	Primary() (Store, error)
	// Readers returns the stores a read of consistency c may use, best
	// first, each with what to tell the caller about it: for a real-time
	// read the primary, then a replica in degraded mode; for an eventual
	// read a replica within the lag bound, then the primary. Errors:
	// UNIT_UNAVAILABLE when no store can serve the read.
	Readers(c Consistency) ([]Reader, error)
}

// Reader is one store a read may use, and where its results come from.
type Reader struct {
	Store Store
	Info  ReadInfo
}

// FixedStorage returns the Storage of one store that serves everything: a
// unit on one SQLite file, or on one database whose replicas it does not use.
func FixedStorage(store Store) Storage { return fixedStorage{store} }

type fixedStorage struct{ store Store }

func (f fixedStorage) Primary() (Store, error) { return f.store, nil }

func (f fixedStorage) Readers(Consistency) ([]Reader, error) {
	return []Reader{{Store: f.store}}, nil
}
