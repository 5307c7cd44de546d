package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"tradeunit"
	"tradeunit/store/sqlstore"
)

// UnitStores opens every unit's primary storage of the routing table,
// read-only (reconciliation, a query store's rebuild), and returns them
// with what closes them all.
func (a *Admin) UnitStores(ctx context.Context) (map[tradeunit.UnitID]tradeunit.Store, func(), error) {
	if a.Topology == nil {
		return nil, nil, errors.New("admin: no storage topology")
	}
	t, top := a.Routes.Current(), a.Topology.Current()
	stores := make(map[tradeunit.UnitID]tradeunit.Store, len(t.Units))
	closeAll := func() {
		for _, s := range stores {
			s.Close()
		}
	}
	for _, u := range t.Units {
		st, ok := top.Unit(u.ID)
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("unit %d has no storage in the topology", u.ID)
		}
		s, err := sqlstore.OpenReadOnly(ctx, st.Storage.Primary, a.Passwords)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("unit %d: %w", u.ID, err)
		}
		stores[u.ID] = s
	}
	return stores, closeAll, nil
}

// Difference is one figure on which the units and the query store disagree.
type Difference struct {
	Mchid    string `json:"mchid"`
	Currency string `json:"currency"`
	Field    string `json:"field"` // created, paid, paid_amount, refunds, refund_amount
	Units    int64  `json:"units"`
	Store    int64  `json:"query_store"`
}

// Reconciliation is the comparison of one day's totals.
type Reconciliation struct {
	From, To    time.Time
	Units       []tradeunit.MerchantTotals // summed over every unit
	Store       []tradeunit.MerchantTotals
	Differences []Difference
}

// Reconcile compares the merchants' totals over [from, to) as every unit
// holds them with those of the query store qs, and lists every difference.
func (a *Admin) Reconcile(ctx context.Context, qs tradeunit.TotalsReader, from, to time.Time) (*Reconciliation, error) {
	stores, closeAll, err := a.UnitStores(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	var all []tradeunit.MerchantTotals
	for id, s := range stores {
		tr, ok := s.(tradeunit.TotalsReader)
		if !ok {
			return nil, fmt.Errorf("unit %d's store cannot sum its orders", id)
		}
		t, err := tr.Totals(ctx, from, to)
		if err != nil {
			return nil, fmt.Errorf("unit %d: %w", id, err)
		}
		all = append(all, t...)
	}
	store, err := qs.Totals(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("query store: %w", err)
	}
	r := &Reconciliation{From: from, To: to, Units: tradeunit.SumTotals(all), Store: tradeunit.SumTotals(store)}
	r.Differences = CompareTotals(r.Units, r.Store)
	return r, nil
}

type totalsKey struct{ mchid, currency string }

// CompareTotals lists every figure where units and store (each summed, see
// tradeunit.SumTotals) differ; a merchant missing on one side counts as zeros there.
func CompareTotals(units, store []tradeunit.MerchantTotals) []Difference {
	index := func(ts []tradeunit.MerchantTotals) map[totalsKey]tradeunit.MerchantTotals {
		m := make(map[totalsKey]tradeunit.MerchantTotals, len(ts))
		for _, t := range ts {
			m[totalsKey{t.Mchid, t.Currency}] = t
		}
		return m
	}
	u, s := index(units), index(store)
	keys := map[totalsKey]bool{}
	for k := range u {
		keys[k] = true
	}
	for k := range s {
		keys[k] = true
	}
	var out []Difference
	for k := range keys {
		a, b := u[k], s[k]
		for _, f := range []struct {
			name string
			a, b int64
		}{{"created", a.Created, b.Created}, {"paid", a.Paid, b.Paid}, {"paid_amount", a.PaidAmount, b.PaidAmount},
			{"refunds", a.Refunds, b.Refunds}, {"refund_amount", a.RefundAmount, b.RefundAmount}} {
			if f.a != f.b {
				out = append(out, Difference{Mchid: k.mchid, Currency: k.currency, Field: f.name, Units: f.a, Store: f.b})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Mchid != out[j].Mchid {
			return out[i].Mchid < out[j].Mchid
		}
		if out[i].Currency != out[j].Currency {
			return out[i].Currency < out[j].Currency
		}
		return out[i].Field < out[j].Field
	})
	return out
}
