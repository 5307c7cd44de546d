package rpc

import (
	"time"

	"tradeunit"
	"tradeunit/rpc/unitpb"
)

// Conversions between the domain types and their wire messages. Each pair is
// written side by side so that a field added to one direction is hard to
// forget in the other; the round-trip tests check every field.

// Empty lists decode as nil on the wire, so they encode to nil too: a round
// trip then returns exactly what was sent, whether nil or not.

func unitsToProto(us []tradeunit.UnitID) []uint32 {
	if len(us) == 0 {
		return nil
	}
	out := make([]uint32, len(us))
	for i, u := range us {
		out[i] = uint32(u)
	}
	return out
}

func unitsFromProto(us []uint32) []tradeunit.UnitID {
	if len(us) == 0 {
		return nil
	}
	out := make([]tradeunit.UnitID, len(us))
	for i, u := range us {
		out[i] = tradeunit.UnitID(u)
	}
	return out
}

// readToProto encodes where a result was read from; nil (nothing on the
// wire) for the primary, the common case.
func readToProto(r tradeunit.ReadInfo) *unitpb.ReadInfo {
	if r == (tradeunit.ReadInfo{}) {
		return nil
	}
	return &unitpb.ReadInfo{
		Source:      string(r.Source),
		Degraded:    r.Degraded,
		StalenessUs: r.Staleness.Microseconds(),
	}
}

func readFromProto(p *unitpb.ReadInfo) tradeunit.ReadInfo {
	return tradeunit.ReadInfo{
		Source:    tradeunit.ReadSource(p.GetSource()),
		Degraded:  p.GetDegraded(),
		Staleness: time.Duration(p.GetStalenessUs()) * time.Microsecond,
	}
}

// consistencyToProto encodes a read's consistency: "" for the default,
// real-time, so that a request of a caller that never asks is unchanged.
func consistencyToProto(c tradeunit.Consistency) string {
	if c == tradeunit.RealTime {
		return ""
	}
	return string(c)
}

// consistencyFromProto decodes consistencyToProto. A value this unit does
// not know (a newer proxy's) is read as real-time, the safe choice.
func consistencyFromProto(s string) tradeunit.Consistency {
	c, err := tradeunit.ParseConsistency(s)
	if err != nil {
		return tradeunit.RealTime
	}
	return c
}

func orderToProto(o *tradeunit.Order) *unitpb.Order {
	return &unitpb.Order{
		OrderNo:        o.OrderNo,
		Mchid:          o.Mchid,
		OutTradeNo:     o.OutTradeNo,
		Description:    o.Description,
		Total:          o.Amount.Total,
		Currency:       o.Amount.Currency,
		TradeState:     string(o.State),
		PaymentId:      o.PaymentID,
		Refunded:       o.Refunded,
		CreateTimeUs:   tradeunit.UnixMicros(o.CreateTime),
		UpdateTimeUs:   tradeunit.UnixMicros(o.UpdateTime),
		SuccessTimeUs:  tradeunit.UnixMicros(o.SuccessTime),
		CloseTimeUs:    tradeunit.UnixMicros(o.CloseTime),
		AbandonedUnits: unitsToProto(o.AbandonedUnits),
		Read:           readToProto(o.Read),
		Attempt:        o.Attempt,
		CloseReason:    string(o.CloseReason),
	}
}

func orderFromProto(p *unitpb.Order) *tradeunit.Order {
	return &tradeunit.Order{
		OrderNo:        p.GetOrderNo(),
		Mchid:          p.GetMchid(),
		OutTradeNo:     p.GetOutTradeNo(),
		Description:    p.GetDescription(),
		Amount:         tradeunit.Amount{Total: p.GetTotal(), Currency: p.GetCurrency()},
		State:          tradeunit.TradeState(p.GetTradeState()),
		PaymentID:      p.GetPaymentId(),
		Refunded:       p.GetRefunded(),
		CreateTime:     tradeunit.FromUnixMicros(p.GetCreateTimeUs()),
		UpdateTime:     tradeunit.FromUnixMicros(p.GetUpdateTimeUs()),
		SuccessTime:    tradeunit.FromUnixMicros(p.GetSuccessTimeUs()),
		CloseTime:      tradeunit.FromUnixMicros(p.GetCloseTimeUs()),
		AbandonedUnits: unitsFromProto(p.GetAbandonedUnits()),
		Read:           readFromProto(p.GetRead()),
		Attempt:        p.GetAttempt(),
		CloseReason:    tradeunit.CloseReason(p.GetCloseReason()),
	}
}

func refundToProto(f *tradeunit.Refund) *unitpb.Refund {
	return &unitpb.Refund{
		RefundId:     f.RefundID,
		OutRefundNo:  f.OutRefundNo,
		Mchid:        f.Mchid,
		OrderNo:      f.OrderNo,
		Refund:       f.Amount.Refund,
		Currency:     f.Amount.Currency,
		Reason:       f.Reason,
		Status:       string(f.Status),
		CreateTimeUs: tradeunit.UnixMicros(f.CreateTime),
		Read:         readToProto(f.Read),
	}
}

func refundFromProto(p *unitpb.Refund) *tradeunit.Refund {
	return &tradeunit.Refund{
		RefundID:    p.GetRefundId(),
		OutRefundNo: p.GetOutRefundNo(),
		Mchid:       p.GetMchid(),
		OrderNo:     p.GetOrderNo(),
		Amount:      tradeunit.RefundAmount{Refund: p.GetRefund(), Currency: p.GetCurrency()},
		Reason:      p.GetReason(),
		Status:      tradeunit.RefundStatus(p.GetStatus()),
		CreateTime:  tradeunit.FromUnixMicros(p.GetCreateTimeUs()),
		Read:        readFromProto(p.GetRead()),
	}
}

func createOrderToProto(r tradeunit.CreateOrderRequest) *unitpb.CreateOrderRequest {
	return &unitpb.CreateOrderRequest{
		Mchid:          r.Mchid,
		OutTradeNo:     r.OutTradeNo,
		Description:    r.Description,
		Total:          r.Amount.Total,
		Currency:       r.Amount.Currency,
		AbandonedUnits: unitsToProto(r.AbandonedUnits),
		Attempt:        r.Attempt,
	}
}

func createOrderFromProto(p *unitpb.CreateOrderRequest) tradeunit.CreateOrderRequest {
	return tradeunit.CreateOrderRequest{
		Mchid:          p.GetMchid(),
		OutTradeNo:     p.GetOutTradeNo(),
		Description:    p.GetDescription(),
		Amount:         tradeunit.Amount{Total: p.GetTotal(), Currency: p.GetCurrency()},
		AbandonedUnits: unitsFromProto(p.GetAbandonedUnits()),
		Attempt:        p.GetAttempt(),
	}
}

func payOrderToProto(r tradeunit.PayOrderRequest) *unitpb.PayOrderRequest {
	return &unitpb.PayOrderRequest{Mchid: r.Mchid, OrderNo: r.OrderNo, PaymentId: r.PaymentID}
}

func payOrderFromProto(p *unitpb.PayOrderRequest) tradeunit.PayOrderRequest {
	return tradeunit.PayOrderRequest{Mchid: p.GetMchid(), OrderNo: p.GetOrderNo(), PaymentID: p.GetPaymentId()}
}

func createRefundToProto(r tradeunit.CreateRefundRequest) *unitpb.CreateRefundRequest {
	return &unitpb.CreateRefundRequest{
		Mchid:       r.Mchid,
		OrderNo:     r.OrderNo,
		OutRefundNo: r.OutRefundNo,
		Refund:      r.Amount.Refund,
		Currency:    r.Amount.Currency,
		Reason:      r.Reason,
	}
}

func createRefundFromProto(p *unitpb.CreateRefundRequest) tradeunit.CreateRefundRequest {
	return tradeunit.CreateRefundRequest{
		Mchid:       p.GetMchid(),
		OrderNo:     p.GetOrderNo(),
		OutRefundNo: p.GetOutRefundNo(),
		Amount:      tradeunit.RefundAmount{Refund: p.GetRefund(), Currency: p.GetCurrency()},
		Reason:      p.GetReason(),
	}
}
