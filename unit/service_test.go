package unit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

func newService(t *testing.T, id tradeunit.UnitID, now time.Time) *unit.Service {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := unit.DefaultConfig(id)
	cfg.Now = func() time.Time { return now }
	svc, err := unit.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func req(out string, total int64) tradeunit.CreateOrderRequest {
	return tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: out, Description: "d", Amount: tradeunit.Amount{Total: total}}
}

func TestCreateNumbersOrderWithUnitAndTime(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	svc := newService(t, 42, now)
	o, err := svc.CreateOrder(context.Background(), req("order-0001", 100))
	if err != nil {
		t.Fatal(err)
	}
	n, err := orderno.Parse(o.OrderNo)
	if err != nil {
		t.Fatal(err)
	}
	if n.Unit != 42 || !n.Time.Equal(now) || o.Amount.Currency != "CNY" || o.State != tradeunit.StateNotPay {
		t.Fatalf("got order %+v numbered %+v, want unit 42 at %v in CNY", o, n, now)
	}
}

func TestServiceErrors(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, 1, time.Now())
	o, err := svc.CreateOrder(ctx, req("order-0001", 100))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := orderno.New(2, time.Now(), 1)
	tests := []struct {
		name string
		call func() error
		want tradeunit.Code
	}{
		{"same out_trade_no, other amount", func() error { _, err := svc.CreateOrder(ctx, req("order-0001", 101)); return err }, tradeunit.CodeOutTradeNoUsed},
		{"invalid create", func() error { _, err := svc.CreateOrder(ctx, req("x", 1)); return err }, tradeunit.CodeParamError},
		{"malformed order number", func() error { _, err := svc.Order(ctx, "1900000001", "123"); return err }, tradeunit.CodeParamError},
		{"another unit's order", func() error { _, err := svc.Order(ctx, "1900000001", other.String()); return err }, tradeunit.CodeNotFound},
		{"another merchant", func() error { _, err := svc.Order(ctx, "1900000002", o.OrderNo); return err }, tradeunit.CodeNotFound},
		{"pay without payment id", func() error {
			_, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: "1900000001", OrderNo: o.OrderNo})
			return err
		}, tradeunit.CodeParamError},
		{"refund unpaid", func() error {
			_, err := svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: "1900000001", OrderNo: o.OrderNo,
				OutRefundNo: "r1", Amount: tradeunit.RefundAmount{Refund: 1}})
			return err
		}, tradeunit.CodeInvalidRequest},
	}
	for _, tt := range tests {
		if got := tradeunit.ErrorCode(tt.call()); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRefundNumberReusedForAnotherRefundConflicts(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, 1, time.Now())
	o, _ := svc.CreateOrder(ctx, req("order-0001", 100))
	if _, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: "p"}); err != nil {
		t.Fatal(err)
	}
	r := tradeunit.CreateRefundRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: "r1", Amount: tradeunit.RefundAmount{Refund: 10}}
	if _, err := svc.CreateRefund(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Amount.Refund = 20
	if _, err := svc.CreateRefund(ctx, r); tradeunit.ErrorCode(err) != tradeunit.CodeOutRefundNoUsed {
		t.Fatalf("got %v, want OUT_REFUND_NO_USED", err)
	}
}

func TestRefundWithoutCurrencyTakesTheOrders(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, 1, time.Now())
	r := req("order-usd-1", 100)
	r.Amount.Currency = "USD"
	o, err := svc.CreateOrder(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: "p"}); err != nil {
		t.Fatal(err)
	}
	f, err := svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: "r1",
		Amount: tradeunit.RefundAmount{Refund: 10}})
	if err != nil || f.Amount.Currency != "USD" {
		t.Fatalf("refund without a currency of a USD order: %+v, %v; want a USD refund", f, err)
	}
	// Repeating it, still without a currency, is the same refund.
	again, err := svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: "r1",
		Amount: tradeunit.RefundAmount{Refund: 10}})
	if err != nil || again.RefundID != f.RefundID {
		t.Fatalf("repeat: %+v, %v", again, err)
	}
	_, err = svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: "r2",
		Amount: tradeunit.RefundAmount{Refund: 10, Currency: "CNY"}})
	if tradeunit.ErrorCode(err) != tradeunit.CodeParamError {
		t.Fatalf("CNY refund of a USD order: got %v, want PARAM_ERROR", err)
	}
}
