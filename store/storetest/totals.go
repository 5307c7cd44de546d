package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"tradeunit"
)

// testTotals: Totals counts creates, payments and refunds by their own
// times over a half-open range, per merchant and currency, without the
// probe merchant.
func testTotals(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	tr, ok := s.(tradeunit.TotalsReader)
	if !ok {
		t.Fatalf("%T does not implement tradeunit.TotalsReader", s)
	}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	create := func(mchid, currency string, total int64, at time.Time) *tradeunit.Order {
		o := newOrder(t, mchid, total)
		o.Amount.Currency, o.CreateTime = currency, at
		return mustCreate(t, s, o)
	}
	payAt := func(o *tradeunit.Order, at time.Time) {
		if _, err := s.PayOrder(ctx, o.Mchid, o.OrderNo, "p-"+o.OrderNo, at); err != nil {
			t.Fatal(err)
		}
	}
	refundAt := func(o *tradeunit.Order, no string, amount int64, at time.Time) {
		r := refund(o.Mchid, o.OrderNo, no, amount)
		r.CreateTime = at
		if _, _, err := s.CreateRefund(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	inRange := create(mchA, "CNY", 100, from) // the first instant is in
	payAt(inRange, from.Add(time.Minute))
	refundAt(inRange, "t-r1", 10, from.Add(2*time.Minute))
	refundAt(inRange, "t-r2", 20, to) // the last instant is out
	before := create(mchA, "CNY", 200, from.Add(-time.Microsecond))
	payAt(before, from.Add(3*time.Minute)) // created before, paid in the range
	atEnd := create(mchA, "CNY", 400, to)
	payAt(atEnd, to)
	create(mchA, "USD", 800, from.Add(time.Second)) // never paid
	other := create(mchB, "CNY", 1600, from.Add(time.Second))
	payAt(other, to.Add(-time.Microsecond))
	probe := create(tradeunit.ProbeMchid, "CNY", 1, from.Add(time.Second))
	payAt(probe, from.Add(time.Second))
	refundAt(probe, "t-probe", 1, from.Add(time.Second))

	tests := []struct {
		name     string
		from, to time.Time
		want     []tradeunit.MerchantTotals
	}{
		{"the hour", from, to, []tradeunit.MerchantTotals{
			{Mchid: mchA, Currency: "CNY", Created: 1, Paid: 2, PaidAmount: 300, Refunds: 1, RefundAmount: 10},
			{Mchid: mchA, Currency: "USD", Created: 1},
			{Mchid: mchB, Currency: "CNY", Created: 1, Paid: 1, PaidAmount: 1600},
		}},
		{"from the zero time counts no unpaid order as paid", time.Time{}, from, []tradeunit.MerchantTotals{
			{Mchid: mchA, Currency: "CNY", Created: 1},
		}},
		{"the next hour", to, to.Add(time.Hour), []tradeunit.MerchantTotals{
			{Mchid: mchA, Currency: "CNY", Created: 1, Paid: 1, PaidAmount: 400, Refunds: 1, RefundAmount: 20},
		}},
		{"nothing", to.Add(time.Hour), to.Add(2 * time.Hour), []tradeunit.MerchantTotals{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.Totals(ctx, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Totals: got %+v, want %+v", got, tt.want)
			}
		})
	}
	_, err := tr.Totals(ctx, to, from)
	wantCode(t, "a reversed range", err, tradeunit.CodeParamError)
}
