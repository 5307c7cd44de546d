package admin

import (
	"reflect"
	"testing"

	"tradeunit"
)

func TestCompareTotals(t *testing.T) {
	units := tradeunit.SumTotals([]tradeunit.MerchantTotals{
		{Mchid: "m1", Currency: "CNY", Created: 2, Paid: 1, PaidAmount: 100},
		{Mchid: "m1", Currency: "CNY", Created: 3, Paid: 2, PaidAmount: 50, Refunds: 1, RefundAmount: 10},
		{Mchid: "m2", Currency: "CNY", Created: 1},
	})
	if want := (tradeunit.MerchantTotals{Mchid: "m1", Currency: "CNY", Created: 5, Paid: 3, PaidAmount: 150, Refunds: 1, RefundAmount: 10}); units[0] != want {
		t.Fatalf("sum: got %+v, want %+v", units[0], want)
	}
	tests := []struct {
		name  string
		store []tradeunit.MerchantTotals
		want  []Difference
	}{
		{"equal", []tradeunit.MerchantTotals{units[0], units[1]}, nil},
		{"a planted difference", []tradeunit.MerchantTotals{
			{Mchid: "m1", Currency: "CNY", Created: 5, Paid: 3, PaidAmount: 149, Refunds: 1, RefundAmount: 10}, units[1]},
			[]Difference{{Mchid: "m1", Currency: "CNY", Field: "paid_amount", Units: 150, Store: 149}}},
		{"a merchant missing in the store", []tradeunit.MerchantTotals{units[0]},
			[]Difference{{Mchid: "m2", Currency: "CNY", Field: "created", Units: 1, Store: 0}}},
		{"a merchant only in the store", []tradeunit.MerchantTotals{units[0], units[1], {Mchid: "m3", Currency: "CNY", Refunds: 1, RefundAmount: 5}},
			[]Difference{{Mchid: "m3", Currency: "CNY", Field: "refund_amount", Units: 0, Store: 5},
				{Mchid: "m3", Currency: "CNY", Field: "refunds", Units: 0, Store: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompareTotals(units, tradeunit.SumTotals(tt.store)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
