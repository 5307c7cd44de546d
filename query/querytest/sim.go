package querytest

import (
	"fmt"
	"time"

	"tradeunit"
)

// Sim plays a unit: it makes orders change as a unit would and records the
// events it would emit, so that a test knows what a store fed them must
// hold. It is not safe for concurrent use; give each goroutine its own.
type Sim struct {
	Unit   tradeunit.UnitID
	Events []tradeunit.OrderEvent
	// Orders and Refunds are the orders and refunds as the unit holds
	// them now.
	Orders  []*tradeunit.EventOrder
	Refunds []SimRefund
	seq     int64
}

// SimRefund is a refund a Sim made.
type SimRefund struct {
	tradeunit.EventRefund
	Order *tradeunit.EventOrder
}

// NewSim returns a Sim of unit.
func NewSim(unit tradeunit.UnitID) *Sim { return &Sim{Unit: unit} }

func (s *Sim) emit(typ tradeunit.EventType, o *tradeunit.EventOrder, at time.Time, r *tradeunit.EventRefund) tradeunit.OrderEvent {
	s.seq++
	e := tradeunit.OrderEvent{Schema: tradeunit.EventSchema, ID: tradeunit.EventID(s.Unit, s.seq), Unit: s.Unit,
		Seq: s.seq, Type: typ, Time: at, Order: *o, Refund: r}
	s.Events = append(s.Events, e)
	return e
}

// Create makes a NOTPAY order of mchid at time at.
func (s *Sim) Create(mchid string, total int64, currency string, at time.Time) *tradeunit.EventOrder {
	at = at.UTC().Truncate(time.Microsecond)
	n := len(s.Orders) + 1
	o := &tradeunit.EventOrder{OrderNo: fmt.Sprintf("%04d%012d", s.Unit, n), Mchid: mchid,
		OutTradeNo: fmt.Sprintf("out-%d-%d", s.Unit, n), Description: fmt.Sprintf("item %d, size L", n),
		Total: total, Currency: currency, State: tradeunit.StateNotPay, CreateTime: at, UpdateTime: at, Version: 1}
	s.Orders = append(s.Orders, o)
	s.emit(tradeunit.EventOrderCreated, o, at, nil)
	return o
}

// Pay pays o at time at.
func (s *Sim) Pay(o *tradeunit.EventOrder, at time.Time) {
	at = at.UTC().Truncate(time.Microsecond)
	o.State, o.PaymentID, o.SuccessTime, o.UpdateTime = tradeunit.StateSuccess, "pay-"+o.OrderNo, at, at
	o.Version++
	s.emit(tradeunit.EventOrderPaid, o, at, nil)
}

// Close closes o at time at.
func (s *Sim) Close(o *tradeunit.EventOrder, at time.Time) {
	at = at.UTC().Truncate(time.Microsecond)
	o.State, o.CloseTime, o.UpdateTime = tradeunit.StateClosed, at, at
	o.Version++
	s.emit(tradeunit.EventOrderClosed, o, at, nil)
}

// Refund refunds amount of the paid order o at time at.
func (s *Sim) Refund(o *tradeunit.EventOrder, amount int64, at time.Time) *tradeunit.EventRefund {
	at = at.UTC().Truncate(time.Microsecond)
	o.State, o.Refunded, o.UpdateTime = tradeunit.StateRefund, o.Refunded+amount, at
	o.Version++
	n := 0
	for _, r := range s.Refunds {
		if r.Order == o {
			n++
		}
	}
	r := &tradeunit.EventRefund{RefundID: fmt.Sprintf("%s%02d", o.OrderNo, n+1), OutRefundNo: fmt.Sprintf("rf-%s-%d", o.OrderNo, n+1),
		Amount: amount, Currency: o.Currency, Reason: "damaged", CreateTime: at}
	s.Refunds = append(s.Refunds, SimRefund{*r, o})
	s.emit(tradeunit.EventRefundCreated, o, at, r)
	return r
}

// Take returns the events emitted since the last Take (or since the
// start), for a consumer that applies them in batches.
func (s *Sim) Take(from *int) []tradeunit.OrderEvent {
	out := s.Events[*from:]
	*from = len(s.Events)
	return out
}
