package tradeunit

import "time"

// ChangeKind names a change of an order's state that Store.ChangeOrders
// makes.
type ChangeKind uint8

// The changes Store.ChangeOrders makes, each what the Store method of the
// same name does for one order.
const (
	ChangePay   ChangeKind = iota + 1 // PayOrder
	ChangeClose                       // CloseOrder
)

// OrderChange is one change of Store.ChangeOrders: the arguments of the
// PayOrder or CloseOrder call it stands for.
type OrderChange struct {
	Kind      ChangeKind
	Mchid     string
	OrderNo   string
	PaymentID string // ChangePay only
	At        time.Time
}

// ChangeResult is one change's result of Store.ChangeOrders: the order as
// the change left it, or why it was refused.
type ChangeResult struct {
	Order *Order
	Err   error
}

// RefundResult is one refund's result of Store.CreateRefunds.
type RefundResult struct {
	Stored  *Refund
	Created bool
	Err     error
}
