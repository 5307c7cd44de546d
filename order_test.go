package tradeunit

import (
	"errors"
	"strings"
	"testing"
)

func order(state TradeState, total, refunded int64) *Order {
	return &Order{OrderNo: "1", State: state, PaymentID: "p1", Refunded: refunded,
		Amount: Amount{Total: total, Currency: "CNY"}}
}

func TestCheckPay(t *testing.T) {
	tests := []struct {
		state     TradeState
		paymentID string
		wantDone  bool
		wantCode  Code
	}{
		{StateNotPay, "p1", false, ""},
		{StateSuccess, "p1", true, ""},
		{StateSuccess, "p2", false, CodeOrderPaid},
		{StateRefund, "p1", true, ""},
		{StateRefund, "p2", false, CodeOrderPaid},
		{StateClosed, "p1", false, CodeOrderClosed},
		{"BOGUS", "p1", false, CodeInternal},
	}
	for _, tt := range tests {
		done, err := order(tt.state, 100, 0).CheckPay(tt.paymentID)
		if done != tt.wantDone || ErrorCode(err) != tt.wantCode {
			t.Errorf("pay %s with %s: got done=%v code=%q, want done=%v code=%q", tt.state, tt.paymentID, done, ErrorCode(err), tt.wantDone, tt.wantCode)
		}
	}
}

func TestCheckClose(t *testing.T) {
	tests := []struct {
		state    TradeState
		wantDone bool
		wantCode Code
	}{
		{StateNotPay, false, ""},
		{StateClosed, true, ""},
		{StateSuccess, false, CodeOrderPaid},
		{StateRefund, false, CodeOrderPaid},
		{"BOGUS", false, CodeInternal},
	}
	for _, tt := range tests {
		done, err := order(tt.state, 100, 0).CheckClose()
		if done != tt.wantDone || ErrorCode(err) != tt.wantCode {
			t.Errorf("close %s: got done=%v code=%q, want done=%v code=%q", tt.state, done, ErrorCode(err), tt.wantDone, tt.wantCode)
		}
	}
}

func TestCheckRefund(t *testing.T) {
	tests := []struct {
		state    TradeState
		refunded int64
		amount   RefundAmount
		wantCode Code
	}{
		{StateSuccess, 0, RefundAmount{100, "CNY"}, ""},
		{StateSuccess, 0, RefundAmount{101, "CNY"}, CodeNotEnough},
		{StateRefund, 60, RefundAmount{40, "CNY"}, ""},
		{StateRefund, 60, RefundAmount{41, "CNY"}, CodeNotEnough},
		{StateRefund, 100, RefundAmount{1, "CNY"}, CodeNotEnough},
		{StateSuccess, 0, RefundAmount{10, "USD"}, CodeParamError},
		{StateNotPay, 0, RefundAmount{10, "CNY"}, CodeInvalidRequest},
		{StateClosed, 0, RefundAmount{10, "CNY"}, CodeOrderClosed},
	}
	for _, tt := range tests {
		err := order(tt.state, 100, tt.refunded).CheckRefund(tt.amount)
		if ErrorCode(err) != tt.wantCode {
			t.Errorf("refund %v of %s order with %d refunded: got %q (%v), want %q", tt.amount, tt.state, tt.refunded, ErrorCode(err), err, tt.wantCode)
		}
	}
}

func TestCreateOrderRequestValidate(t *testing.T) {
	ok := CreateOrderRequest{Mchid: "1900000001", OutTradeNo: "abc-123_x", Description: "咖啡 coffee", Amount: Amount{Total: 1}}
	tests := []struct {
		name   string
		change func(r *CreateOrderRequest)
		field  string // "" if valid
	}{
		{"valid", func(r *CreateOrderRequest) {}, ""},
		{"max amount", func(r *CreateOrderRequest) { r.Amount.Total = MaxAmount }, ""},
		{"no mchid", func(r *CreateOrderRequest) { r.Mchid = "" }, "mchid"},
		{"short out_trade_no", func(r *CreateOrderRequest) { r.OutTradeNo = "abc" }, "out_trade_no"},
		{"long out_trade_no", func(r *CreateOrderRequest) { r.OutTradeNo = strings.Repeat("a", 33) }, "out_trade_no"},
		{"space in out_trade_no", func(r *CreateOrderRequest) { r.OutTradeNo = "abc 123" }, "out_trade_no"},
		{"empty description", func(r *CreateOrderRequest) { r.Description = "" }, "description"},
		{"long description", func(r *CreateOrderRequest) { r.Description = strings.Repeat("咖", 128) }, "description"},
		{"control char", func(r *CreateOrderRequest) { r.Description = "a\x00b" }, "description"},
		{"invalid utf-8", func(r *CreateOrderRequest) { r.Description = "a\xffb" }, "description"},
		{"zero amount", func(r *CreateOrderRequest) { r.Amount.Total = 0 }, "amount.total"},
		{"over max", func(r *CreateOrderRequest) { r.Amount.Total = MaxAmount + 1 }, "amount.total"},
		{"lowercase currency", func(r *CreateOrderRequest) { r.Amount.Currency = "cny" }, "amount.currency"},
		{"bad abandoned unit", func(r *CreateOrderRequest) { r.AbandonedUnits = []UnitID{0} }, "unit number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.change(&r)
			r.Normalize()
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if ErrorCode(err) != CodeParamError || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want a PARAM_ERROR naming %s", err, tt.field)
			}
		})
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	wrapped := Internal("op", Errorf(CodeNotFound, "x"))
	if ErrorCode(wrapped) != CodeInternal || ErrorMessage(wrapped) != "internal error" {
		t.Fatalf("internal error: got %q %q", ErrorCode(wrapped), ErrorMessage(wrapped))
	}
	if ErrorCode(nil) != "" || ErrorCode(errors.ErrUnsupported) != CodeInternal {
		t.Fatal("ErrorCode of nil or a foreign error")
	}
	if !IsCode(Errorf(CodeOrderPaid, "paid"), CodeOrderPaid) {
		t.Fatal("IsCode")
	}
}
