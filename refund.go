package tradeunit

import "time"

// RefundStatus is a refund's status. Refunds commit synchronously inside the
// order's unit, so every stored refund has succeeded.
type RefundStatus string

// RefundSuccess is the status of a committed refund.
const RefundSuccess RefundStatus = "SUCCESS"

// Refund is a partial or full refund of a paid order. It lives in its order's
// unit; the sum of an order's refunds never exceeds the order's total.
type Refund struct {
	RefundID    string // the unit-assigned id: the order number and a refund index
	OutRefundNo string
	Mchid       string
	OrderNo     string
	Amount      RefundAmount
	Reason      string
	Status      RefundStatus
	CreateTime  time.Time

	// Read says where this copy of the refund was read from (see
	// Order.Read). It is not stored.
	Read ReadInfo
}

// SameRequest reports whether f was created from the same request as r.
func (f *Refund) SameRequest(r CreateRefundRequest) bool {
	return f.Mchid == r.Mchid && f.OutRefundNo == r.OutRefundNo && f.OrderNo == r.OrderNo &&
		f.Amount == r.Amount && f.Reason == r.Reason
}
