package tradeunit

import "context"

// OrderService is one unit's order API: what a logic service serves and what
// the proxy calls over RPC. Every call names the merchant; an order or refund
// of another merchant is reported as RESOURCE_NOT_EXISTS, never as forbidden,
// so order numbers cannot be probed.
//
// All changes are idempotent: a repeated create (same mchid and out_trade_no,
// same body) returns the first order, paying again with the same payment id
// returns the paid order, closing a closed order succeeds, and a repeated
// refund (same out_refund_no, same body) returns the first refund. So a call
// whose outcome is unknown may be repeated on the same unit.
//
// Reads (Order, OrderByOutTradeNo, Refund) honour the consistency of their
// ctx (WithConsistency): real-time by default, served by the unit's primary;
// eventual, served by a replica within the unit's lag bound. The result's
// Read field says where it came from and whether the unit was degraded.
// Changes always go to the primary.
type OrderService interface {
	// CreateOrder creates an order in this unit. Errors: PARAM_ERROR,
	// OUT_TRADE_NO_USED (same out_trade_no, different body).
	CreateOrder(ctx context.Context, r CreateOrderRequest) (*Order, error)
	// Order returns an order by number. Errors: RESOURCE_NOT_EXISTS.
	Order(ctx context.Context, mchid, orderNo string) (*Order, error)
	// OrderByOutTradeNo returns an order by the merchant's number.
	// Errors: RESOURCE_NOT_EXISTS.
	OrderByOutTradeNo(ctx context.Context, mchid, outTradeNo string) (*Order, error)
	// PayOrder marks an order paid. Errors: RESOURCE_NOT_EXISTS,
	// ORDER_CLOSED, ORDER_PAID (paid by another payment id).
	PayOrder(ctx context.Context, r PayOrderRequest) (*Order, error)
	// CloseOrder closes an unpaid order. Errors: RESOURCE_NOT_EXISTS, ORDER_PAID.
	CloseOrder(ctx context.Context, mchid, orderNo string) (*Order, error)
	// CreateRefund refunds part or all of a paid order. Errors:
	// RESOURCE_NOT_EXISTS, INVALID_REQUEST (not paid), ORDER_CLOSED,
	// NOT_ENOUGH (refunds would exceed the total), OUT_REFUND_NO_USED.
	CreateRefund(ctx context.Context, r CreateRefundRequest) (*Refund, error)
	// Refund returns a refund by the merchant's refund number.
	// Errors: RESOURCE_NOT_EXISTS.
	Refund(ctx context.Context, mchid, outRefundNo string) (*Refund, error)
	// SupersedeAttempt settles a directory attempt whose outcome is
	// unknown: it returns the unit's order for (mchid, outTradeNo) if it
	// has one, whatever attempt made it; if it has none, it records that
	// attempt as superseded, so that a create carrying it that arrives
	// later is refused (ATTEMPT_SUPERSEDED), and answers
	// RESOURCE_NOT_EXISTS. It is idempotent.
	SupersedeAttempt(ctx context.Context, mchid, outTradeNo string, attempt uint64) (*Order, error)
	// CloseSuperseded closes an orphan: a NOTPAY order whose merchant
	// order number the directory gives to another order (winner), with
	// CloseReason CloseSuperseded; it can never be paid. Closing a
	// superseded order again succeeds. Errors: RESOURCE_NOT_EXISTS,
	// ORDER_PAID (an orphan that was paid: a breach to report, never to
	// close).
	CloseSuperseded(ctx context.Context, mchid, orderNo, winner string) (*Order, error)
}
