package querytest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/query"
)

func testDailyStats(t *testing.T, s *query.Store) {
	sim := NewSim(1)
	// Created on day0 (CST): its first and last microsecond count.
	a := sim.Create(mchA, 1000, "CNY", day0)
	b := sim.Create(mchA, 2000, "CNY", day0.Add(24*time.Hour-time.Microsecond))
	c := sim.Create(mchA, 3000, "CNY", day0.Add(time.Hour))
	d := sim.Create(mchA, 500, "USD", day0.Add(2*time.Hour))
	sim.Create(mchA, 4000, "CNY", day0.Add(-time.Microsecond)) // the day before
	sim.Create(mchB, 9999, "CNY", day0.Add(time.Hour))         // another merchant
	prev := sim.Create(mchA, 7000, "CNY", day0.Add(-time.Hour))
	sim.Pay(a, day0.Add(time.Minute))
	sim.Pay(c, day0.Add(2*time.Hour))
	sim.Refund(c, 300, day0.Add(3*time.Hour))
	sim.Close(d, day0.Add(3*time.Hour))
	sim.Pay(prev, day0.Add(time.Second))                // created the day before, paid on day0
	sim.Refund(prev, 100, day0.Add(24*time.Hour))       // refunded the day after
	sim.Pay(b, day0.Add(24*time.Hour+time.Microsecond)) // paid the day after
	mustApply(t, s, sim.Events)

	got, err := s.DailyStats(context.Background(), mchA, query.DateOf(day0, s.Zone()))
	if err != nil {
		t.Fatal(err)
	}
	want := query.Stats{Mchid: mchA, Date: query.Date{Year: 2026, Month: 12, Day: 1}, Currencies: []query.CurrencyStats{
		{Currency: "CNY",
			Created: query.CreatedSums{All: sum(3, 6000), NotPay: sum(0, 0), Success: sum(2, 3000),
				Refund: sum(1, 3000)},
			Paid:    sum(3, 11000),
			Refunds: sum(1, 300)},
		{Currency: "USD", Created: query.CreatedSums{All: sum(1, 500), Closed: sum(1, 500)}},
	}}
	// b is paid now (the day after), so it counts as SUCCESS among the
	// orders created on day0.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	empty, err := s.DailyStats(context.Background(), mchA, query.Date{Year: 2020, Month: 1, Day: 1})
	if err != nil || len(empty.Currencies) != 0 {
		t.Errorf("a day without orders: got %+v, %v, want no currencies", empty, err)
	}
}

func testTradeBill(t *testing.T, s *query.Store) {
	sim := NewSim(1)
	a := sim.Create(mchA, 1050, "CNY", day0.Add(-time.Hour))
	b := sim.Create(mchA, 200000, "CNY", day0.Add(time.Hour))
	b.Description = `shoes, "red"`
	sim.Events[len(sim.Events)-1].Order.Description = b.Description
	sim.Pay(a, day0.Add(9*time.Hour+30*time.Minute+15*time.Second))
	sim.Pay(b, day0.Add(10*time.Hour))
	sim.Refund(b, 1999, day0.Add(10*time.Hour)) // the same instant: the payment first
	sim.Refund(a, 50, day0.Add(25*time.Hour))   // the next day: not in the bill
	sim.Pay(sim.Create(mchB, 1, "CNY", day0), day0.Add(time.Hour))
	mustApply(t, s, sim.Events)

	bill, err := s.TradeBill(context.Background(), mchA, query.DateOf(day0, s.Zone()))
	if err != nil {
		t.Fatal(err)
	}
	want := "交易时间,商户号,微信订单号,商户订单号,交易类型,交易状态,货币种类,应结订单金额,微信退款单号,商户退款单号,退款金额,退款状态,商品名称\n" +
		"`2026-12-01 09:30:15,`1900000001,`0001000000000001,`out-1-1,`NATIVE,`SUCCESS,`CNY,`10.50,`0,`0,`0.00,`,\"`item 1, size L\"\n" +
		"`2026-12-01 10:00:00,`1900000001,`0001000000000002,`out-1-2,`NATIVE,`SUCCESS,`CNY,`2000.00,`0,`0,`0.00,`,\"`shoes, \"\"red\"\"\"\n" +
		"`2026-12-01 10:00:00,`1900000001,`0001000000000002,`out-1-2,`NATIVE,`REFUND,`CNY,`0.00,`000100000000000201,`rf-0001000000000002-1,`19.99,`SUCCESS,\"`shoes, \"\"red\"\"\"\n" +
		"总交易单数,应结订单总金额,退款总金额\n" +
		"`3,`2010.50,`19.99\n"
	if string(bill.CSV) != want {
		t.Errorf("got bill\n%s\nwant\n%s", bill.CSV, want)
	}
	sum := sha1.Sum([]byte(want))
	if bill.SHA1 != hex.EncodeToString(sum[:]) || bill.Rows != 3 {
		t.Errorf("got SHA1 %s, %d rows, want %x, 3", bill.SHA1, bill.Rows, sum)
	}
	// The same data, the same bytes.
	again, err := s.TradeBill(context.Background(), mchA, query.DateOf(day0, s.Zone()))
	if err != nil || again.SHA1 != bill.SHA1 {
		t.Errorf("again: got %s, %v, want %s", again.SHA1, err, bill.SHA1)
	}
	empty, err := s.TradeBill(context.Background(), mchA, query.Date{Year: 2020, Month: 1, Day: 1})
	if err != nil || !strings.HasSuffix(string(empty.CSV), "`0,`0.00,`0.00\n") || empty.Rows != 0 {
		t.Errorf("a day without trades: got %q, %v, want a header and zero totals", empty.CSV, err)
	}
}

// testTotals feeds random lifecycles of several merchants and currencies
// and compares Totals over several ranges with sums over the Sim's orders.
func testTotals(t *testing.T, s *query.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	sims := []*Sim{NewSim(1), NewSim(2)}
	merchants := []string{mchB, mchA, "1900000003", tradeunit.ProbeMchid}
	for i := range 300 {
		sim := sims[i%2]
		at := day0.Add(time.Duration(rng.IntN(72*3600)) * time.Second)
		cur := []string{"CNY", "USD"}[rng.IntN(2)]
		o := sim.Create(merchants[rng.IntN(len(merchants))], 100+rng.Int64N(10000), cur, at)
		switch rng.IntN(4) {
		case 1, 2:
			sim.Pay(o, at.Add(time.Duration(rng.IntN(48*3600))*time.Second))
			for rng.IntN(2) == 0 && o.Refunded+10 <= o.Total {
				sim.Refund(o, 10, o.UpdateTime.Add(time.Duration(rng.IntN(24*3600))*time.Second))
			}
		case 3:
			sim.Close(o, at.Add(time.Hour))
		}
	}
	for _, sim := range sims {
		mustApply(t, s, sim.Events)
	}
	ranges := [][2]time.Time{
		{day0, day0.Add(24 * time.Hour)},
		{day0.Add(13 * time.Hour), day0.Add(50 * time.Hour)},
		{day0.Add(-time.Hour), day0.Add(200 * time.Hour)},
		{day0, day0},
	}
	for _, r := range ranges {
		got, err := s.Totals(context.Background(), r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if want := wantTotals(sims, r[0], r[1]); !reflect.DeepEqual(got, want) {
			t.Errorf("Totals [%v, %v):\ngot  %+v\nwant %+v", r[0], r[1], got, want)
		}
	}
	if _, err := s.Totals(context.Background(), day0.Add(time.Hour), day0); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Errorf("from after to: got %v, want PARAM_ERROR", err)
	}
}

func wantTotals(sims []*Sim, from, to time.Time) []tradeunit.MerchantTotals {
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(from) && t.Before(to) }
	type key struct{ mchid, currency string }
	m := map[key]*tradeunit.MerchantTotals{}
	of := func(mchid, currency string) *tradeunit.MerchantTotals {
		k := key{mchid, currency}
		if m[k] == nil {
			m[k] = &tradeunit.MerchantTotals{Mchid: mchid, Currency: currency}
		}
		return m[k]
	}
	for _, sim := range sims {
		for _, o := range sim.Orders {
			if tradeunit.IsProbe(o.Mchid) {
				continue
			}
			if in(o.CreateTime) {
				of(o.Mchid, o.Currency).Created++
			}
			if in(o.SuccessTime) {
				t := of(o.Mchid, o.Currency)
				t.Paid++
				t.PaidAmount += o.Total
			}
		}
		for _, r := range sim.Refunds {
			if !tradeunit.IsProbe(r.Order.Mchid) && in(r.CreateTime) {
				t := of(r.Order.Mchid, r.Currency)
				t.Refunds++
				t.RefundAmount += r.Amount
			}
		}
	}
	out := []tradeunit.MerchantTotals{}
	for _, mchid := range []string{mchA, mchB, "1900000003"} {
		for _, c := range []string{"CNY", "USD"} {
			if t := m[key{mchid, c}]; t != nil {
				out = append(out, *t)
			}
		}
	}
	return out
}

func sum(count, amount int64) query.Sum { return query.Sum{Count: count, Amount: amount} }
