package tradeunit

import (
	"fmt"
	"time"
)

// TradeState is an order's state, named after WeChat Pay's trade_state.
//
//	NOTPAY ──pay──▶ SUCCESS ──refund──▶ REFUND ──refund──▶ REFUND
//	   │
//	   └──close──▶ CLOSED
type TradeState string

// The states of an order.
const (
	StateNotPay  TradeState = "NOTPAY"  // created, waiting for payment
	StateSuccess TradeState = "SUCCESS" // paid
	StateRefund  TradeState = "REFUND"  // paid, and at least one refund exists
	StateClosed  TradeState = "CLOSED"  // closed before payment; final
)

// Paid reports whether an order in state s has been paid.
func (s TradeState) Paid() bool { return s == StateSuccess || s == StateRefund }

// Order is one merchant order. It lives in exactly one unit, the one whose
// number its OrderNo carries.
type Order struct {
	OrderNo     string
	Mchid       string
	OutTradeNo  string
	Description string
	Amount      Amount
	State       TradeState
	PaymentID   string // set when paid
	Refunded    int64  // sum of all refunds, in the smallest currency unit
	CreateTime  time.Time
	UpdateTime  time.Time
	SuccessTime time.Time // zero until paid
	CloseTime   time.Time // zero unless closed

	// AbandonedUnits lists units where an earlier attempt at creating this
	// order had an unknown outcome (it timed out after being sent). Such an
	// attempt may have left an orphan NOTPAY order with the same
	// (Mchid, OutTradeNo) on that unit; the directory's reconciler closes
	// it (CloseReason CloseSuperseded).
	AbandonedUnits []UnitID
	// Attempt is the directory attempt that made the order (0: made
	// without the directory, e.g. a health probe).
	Attempt uint64
	// CloseReason says why a CLOSED order was closed.
	CloseReason CloseReason
	// Version counts the order's changes: 1 when created, one more with
	// each change. Events carry it, so that a consumer never applies an
	// older copy of the order over a newer one.
	Version int64

	// Read says where this copy of the order was read from: the zero
	// value for the primary; a replica for an eventual read, or for a
	// real-time read in degraded mode. It is not stored.
	Read ReadInfo
}

// CloseReason says why an order was closed.
type CloseReason string

// The reasons an order is closed.
const (
	// CloseByMerchant: the merchant closed it (the API's close).
	CloseByMerchant CloseReason = ""
	// CloseSuperseded: the order is an orphan of a create whose answer
	// was lost, and the merchant's order number has another order (the
	// directory's): the reconciler closed it. It can never be paid.
	CloseSuperseded CloseReason = "SUPERSEDED"
)

// SameRequest reports whether o was created from the same request body as r.
// A create repeated with the same (mchid, out_trade_no) and the same body
// returns the first order; a different body is a conflict.
func (o *Order) SameRequest(r CreateOrderRequest) bool {
	return o.Mchid == r.Mchid && o.OutTradeNo == r.OutTradeNo &&
		o.Description == r.Description && o.Amount == r.Amount
}

// CheckPay decides whether o may be paid by paymentID. done is true when it
// already was, by the same payment: paying twice is idempotent.
func (o *Order) CheckPay(paymentID string) (done bool, err error) {
	switch o.State {
	case StateNotPay:
		return false, nil
	case StateSuccess, StateRefund:
		if o.PaymentID == paymentID {
			return true, nil
		}
		return false, Errorf(CodeOrderPaid, "order %s was already paid by another payment", o.OrderNo)
	case StateClosed:
		if o.CloseReason == CloseSuperseded {
			return false, Errorf(CodeOrderSuperseded, "order %s was superseded by another order with out_trade_no %s; query that one", o.OrderNo, o.OutTradeNo)
		}
		return false, Errorf(CodeOrderClosed, "order %s is closed", o.OrderNo)
	}
	return false, o.unknownState("CheckPay")
}

// unknownState is a fault of ours: the storage holds a state no rule knows.
func (o *Order) unknownState(op string) error {
	return Internal("Order."+op, fmt.Errorf("order %s has unknown state %q", o.OrderNo, o.State))
}

// CheckClose decides whether o may be closed. done is true when it already
// is: closing twice is idempotent.
func (o *Order) CheckClose() (done bool, err error) {
	switch o.State {
	case StateNotPay:
		return false, nil
	case StateClosed:
		return true, nil
	case StateSuccess, StateRefund:
		return false, Errorf(CodeOrderPaid, "order %s is paid and cannot be closed; refund it instead", o.OrderNo)
	}
	return false, o.unknownState("CheckClose")
}

// CheckRefund decides whether amount may be refunded from o.
func (o *Order) CheckRefund(amount RefundAmount) error {
	switch o.State {
	case StateSuccess, StateRefund:
	case StateNotPay:
		return Errorf(CodeInvalidRequest, "order %s is not paid", o.OrderNo)
	case StateClosed:
		return Errorf(CodeOrderClosed, "order %s is closed", o.OrderNo)
	default:
		return o.unknownState("CheckRefund")
	}
	if amount.Currency != o.Amount.Currency {
		return Errorf(CodeParamError, "refund currency %s differs from the order's %s", amount.Currency, o.Amount.Currency)
	}
	if amount.Refund > o.Amount.Total-o.Refunded {
		return Errorf(CodeNotEnough, "refund of %d exceeds the %d left to refund on order %s",
			amount.Refund, o.Amount.Total-o.Refunded, o.OrderNo)
	}
	return nil
}
