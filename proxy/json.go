package proxy

import (
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

// The JSON shapes of the public API, modelled on WeChat Pay API v3.

type createOrderBody struct {
	OutTradeNo  string `json:"out_trade_no"`
	Description string `json:"description"`
	Amount      struct {
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

type payOrderBody struct {
	PaymentID string `json:"payment_id"`
}

type createRefundBody struct {
	OrderNo     string `json:"order_no"`
	OutRefundNo string `json:"out_refund_no"`
	Amount      struct {
		Refund   int64  `json:"refund"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Reason string `json:"reason"`
}

type orderJSON struct {
	OrderNo        string               `json:"order_no"`
	Mchid          string               `json:"mchid"`
	OutTradeNo     string               `json:"out_trade_no"`
	Description    string               `json:"description"`
	Amount         orderAmountJSON      `json:"amount"`
	TradeState     tradeunit.TradeState `json:"trade_state"`
	PaymentID      string               `json:"payment_id,omitempty"`
	CreateTime     string               `json:"create_time"`
	SuccessTime    string               `json:"success_time,omitempty"`
	CloseTime      string               `json:"close_time,omitempty"`
	Unit           tradeunit.UnitID     `json:"unit"`
	AbandonedUnits []tradeunit.UnitID   `json:"abandoned_units,omitempty"`
	readJSON
}

// readJSON says where a result was read from; absent for the primary.
type readJSON struct {
	// ReadFrom is "replica" for a result a replica served: an eventual
	// read, or a real-time read while the unit's primary is down.
	ReadFrom tradeunit.ReadSource `json:"read_from,omitempty"`
	// Degraded marks a real-time read the primary could not serve.
	Degraded bool `json:"degraded,omitempty"`
	// StalenessMS bounds how old the replica's data may be, in ms.
	StalenessMS int64 `json:"staleness_ms,omitempty"`
}

func toReadJSON(r tradeunit.ReadInfo) readJSON {
	if r.Source == tradeunit.FromPrimary {
		return readJSON{}
	}
	// Rounded up: a bound must not shrink.
	return readJSON{ReadFrom: r.Source, Degraded: r.Degraded, StalenessMS: (r.Staleness + time.Millisecond - 1).Milliseconds()}
}

type orderAmountJSON struct {
	Total    int64  `json:"total"`
	Refunded int64  `json:"refunded"`
	Currency string `json:"currency"`
}

type refundJSON struct {
	RefundID    string                 `json:"refund_id"`
	OutRefundNo string                 `json:"out_refund_no"`
	OrderNo     string                 `json:"order_no"`
	Amount      refundAmountJSON       `json:"amount"`
	Reason      string                 `json:"reason,omitempty"`
	Status      tradeunit.RefundStatus `json:"status"`
	CreateTime  string                 `json:"create_time"`
	readJSON
}

type refundAmountJSON struct {
	Refund   int64  `json:"refund"`
	Currency string `json:"currency"`
}

func toOrderJSON(o *tradeunit.Order) orderJSON {
	unit, _ := orderno.UnitOf(o.OrderNo)
	return orderJSON{
		OrderNo: o.OrderNo, Mchid: o.Mchid, OutTradeNo: o.OutTradeNo, Description: o.Description,
		Amount:     orderAmountJSON{Total: o.Amount.Total, Refunded: o.Refunded, Currency: o.Amount.Currency},
		TradeState: o.State, PaymentID: o.PaymentID,
		CreateTime: timeJSON(o.CreateTime), SuccessTime: timeJSON(o.SuccessTime), CloseTime: timeJSON(o.CloseTime),
		Unit: unit, AbandonedUnits: o.AbandonedUnits, readJSON: toReadJSON(o.Read),
	}
}

func toRefundJSON(f *tradeunit.Refund) refundJSON {
	return refundJSON{
		RefundID: f.RefundID, OutRefundNo: f.OutRefundNo, OrderNo: f.OrderNo,
		Amount: refundAmountJSON{Refund: f.Amount.Refund, Currency: f.Amount.Currency},
		Reason: f.Reason, Status: f.Status, CreateTime: timeJSON(f.CreateTime), readJSON: toReadJSON(f.Read),
	}
}

// timeJSON writes RFC 3339 with milliseconds, "" for unset.
func timeJSON(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
