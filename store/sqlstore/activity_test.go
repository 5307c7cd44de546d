package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/store/sqlstore"
)

func TestActivity(t *testing.T) {
	ctx := context.Background()
	d := dsn.MustParse("sqlite:" + filepath.Join(t.TempDir(), "unit.db"))
	s, err := sqlstore.Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	var seq uint64
	create := func(mchid string, at time.Time) string {
		t.Helper()
		seq++
		no, err := orderno.New(7, at, seq)
		if err != nil {
			t.Fatal(err)
		}
		o := &tradeunit.Order{OrderNo: no.String(), Mchid: mchid, OutTradeNo: no.String()[10:], Description: "d",
			Amount: tradeunit.Amount{Total: 1, Currency: tradeunit.DefaultCurrency}, CreateTime: at}
		if _, _, err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o.OrderNo
	}
	// A probe order older than every merchant's order must not count.
	create(tradeunit.ProbeMchid, t0.Add(-time.Hour))
	first := create("1900000001", t0)
	create("1900000001", t0.Add(time.Minute))
	if _, err := s.PayOrder(ctx, "1900000001", first, "pay-1", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	create(tradeunit.ProbeMchid, t0.Add(3*time.Minute))

	ro, err := sqlstore.OpenReadOnly(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, tc := range []struct {
		since      time.Time
		wantEvents int64
	}{
		{t0.Add(-2 * time.Hour), 3},
		{t0.Add(30 * time.Second), 2},
		{t0.Add(90 * time.Second), 1},
		{t0.Add(time.Hour), 0},
	} {
		a, err := ro.Activity(ctx, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		if a.Orders != 2 || a.Oldest != first || a.EventsSince != tc.wantEvents || a.Bytes <= 0 {
			t.Errorf("Activity(%s) = %+v, want 2 orders, oldest %s, %d events, a size", tc.since, a, first, tc.wantEvents)
		}
	}
}
