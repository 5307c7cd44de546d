package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/store/sqlstore"
)

// pairs are the source and copy dialects Sync is tested between.
var pairs = []struct {
	name     string
	src, dst func(t *testing.T) *sqlstore.Store
}{
	{"SQLiteToSQLite", openSQLite, openSQLite},
	{"MySQLToMySQL", openMySQL, openMySQL},
	{"SQLiteToMySQL", openSQLite, openMySQL},
	{"MySQLToSQLite", openMySQL, openSQLite},
}

const (
	mch       = "1900000001"
	rangeRows = 40
)

// fill gives s a unit's data set through the Store's own methods: orders
// NOTPAY, paid, refunded and closed, refunds, events, superseded attempts
// (one with the high bit set, which SQLite stores negative), probe orders,
// a relay lease and a sequence block. It returns the orders made.
func fill(t *testing.T, s *sqlstore.Store, base time.Time, n int) []*tradeunit.Order {
	t.Helper()
	ctx := context.Background()
	if err := s.BindUnit(ctx, lifecycleUnit); err != nil {
		t.Fatal(err)
	}
	var orders []*tradeunit.Order
	for i := 0; i < n; i++ {
		o := newOrderAt(t, mch, base.Add(time.Duration(i)*time.Second), int64(100+i))
		if i%7 == 0 {
			o.AbandonedUnits = []tradeunit.UnitID{3, 5}
		}
		orders = append(orders, o)
	}
	for i := 0; i < n; i += 100 {
		for _, r := range s.CreateOrders(ctx, orders[i:min(i+100, n)]) {
			if r.Err != nil || !r.Created {
				t.Fatalf("create: %v", r.Err)
			}
		}
	}
	for i, o := range orders {
		at := o.CreateTime.Add(time.Minute)
		switch i % 4 {
		case 1, 2:
			if _, err := s.PayOrder(ctx, mch, o.OrderNo, fmt.Sprintf("pay-%d", i), at); err != nil {
				t.Fatal(err)
			}
			if i%4 == 2 {
				mustRefund(t, s, o, fmt.Sprintf("ref-%d", i), 10)
			}
		case 3:
			if _, err := s.CloseOrder(ctx, mch, o.OrderNo, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, attempt := range []uint64{1, 42, 1<<63 + 9} {
		if _, err := s.SupersedeAttempt(ctx, mch, fmt.Sprintf("lost-%d", i), attempt); err != nil && !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
			t.Fatal(err)
		}
	}
	if _, err := s.AcquireRelay(ctx, "relay", "h1", time.Minute, base); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRelayCursor(ctx, "relay", "h1", 17, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AllocateSequence(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	return orders
}

func mustRefund(t *testing.T, s *sqlstore.Store, o *tradeunit.Order, outRefundNo string, amount int64) {
	t.Helper()
	_, _, err := s.CreateRefund(context.Background(), &tradeunit.Refund{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: outRefundNo,
		Amount: tradeunit.RefundAmount{Refund: amount, Currency: "CNY"}, CreateTime: o.CreateTime.Add(2 * time.Minute)})
	if err != nil {
		t.Fatalf("refund %s: %v", outRefundNo, err)
	}
}

func mustSync(t *testing.T, src, dst *sqlstore.Store, opt sqlstore.SyncOptions) sqlstore.SyncReport {
	t.Helper()
	if opt.RangeRows == 0 {
		opt.RangeRows = rangeRows
	}
	rep, err := sqlstore.Sync(context.Background(), src, dst, opt)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return rep
}

// wantEqual verifies dst against src: no range differs, the tables'
// checksums agree, and the rows are the same.
func wantEqual(t *testing.T, src, dst *sqlstore.Store) {
	t.Helper()
	rep := mustSync(t, src, dst, sqlstore.SyncOptions{VerifyOnly: true})
	if rep.RangesDiffering != 0 || rep.RangesCopied != 0 {
		t.Fatalf("verify: %d ranges differ, %d copied; want none", rep.RangesDiffering, rep.RangesCopied)
	}
	for _, ts := range rep.Tables {
		if ts.Rows != ts.DstRows || ts.Checksum != ts.DstChecksum {
			t.Errorf("%s: source %d rows %x, copy %d rows %x", ts.Name, ts.Rows, ts.Checksum, ts.DstRows, ts.DstChecksum)
		}
	}
	if a, b := dump(t, src), dump(t, dst); !reflect.DeepEqual(a, b) {
		for _, name := range sqlstore.DataTables() {
			if !reflect.DeepEqual(a[name], b[name]) {
				t.Errorf("%s differs after a clean verify:\nsource %v\n  copy %v", name, a[name], b[name])
			}
		}
	}
}

// wantSameOrders reads every order of src on dst through the Store.
func wantSameOrders(t *testing.T, src, dst *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	for _, r := range dump(t, src)["orders"] {
		no := r[0].(string)
		want, err := src.Order(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.Order(ctx, no)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Order(%s) on the copy: got %+v, %v; want %+v", no, got, err, want)
		}
	}
}

func maxEventID(t *testing.T, s *sqlstore.Store) int64 {
	t.Helper()
	rows := dump(t, s)["order_events"]
	if len(rows) == 0 {
		return 0
	}
	return rows[len(rows)-1][0].(int64)
}

// TestSyncCopiesAndRepairs: a sync into an empty copy makes it equal; after
// the source changes (pays, refunds, deleted probes, keys before and after
// the existing ones) a verify finds the differing ranges and a sync copies
// only those; the copy then serves every order as the source does, and
// hands out no id or sequence number the source handed out.
func TestSyncCopiesAndRepairs(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := p.src(t), p.dst(t)
			base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			orders := fill(t, src, base, 400)
			probes := []*tradeunit.Order{newOrderAt(t, tradeunit.ProbeMchid, base.Add(time.Hour), 1),
				newOrderAt(t, tradeunit.ProbeMchid, base.Add(time.Hour), 1)}
			for _, o := range probes {
				if _, _, err := src.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}

			var progress []sqlstore.SyncProgress
			rep := mustSync(t, src, dst, sqlstore.SyncOptions{Progress: func(p sqlstore.SyncProgress) { progress = append(progress, p) }})
			size, err := src.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.RowsCopied != size.Rows || rep.RowsChecked != size.Rows {
				t.Errorf("first sync: copied %d, checked %d rows; want %d", rep.RowsCopied, rep.RowsChecked, size.Rows)
			}
			if len(progress) != rep.RangesCompared || progress[len(progress)-1].Rows != rep.RowsCopied ||
				progress[len(progress)-1].TotalRows != size.Rows || progress[len(progress)-1].Bytes != rep.BytesCopied {
				t.Errorf("progress: got %d calls, last %+v; want %d, ending at %d rows of %d", len(progress), progress[len(progress)-1],
					rep.RangesCompared, rep.RowsCopied, size.Rows)
			}
			wantEqual(t, src, dst)
			if again := mustSync(t, src, dst, sqlstore.SyncOptions{}); again.RangesCopied != 0 {
				t.Errorf("a second sync copied %d ranges, want 0", again.RangesCopied)
			}

			// The source serves on.
			for i := 0; i < 40; i += 4 { // NOTPAY ones
				if _, err := src.PayOrder(ctx, mch, orders[i].OrderNo, fmt.Sprintf("late-%d", i), base.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			mustRefund(t, src, orders[1], "late-refund", 5)
			mustRefund(t, src, orders[202], "late-refund-2", 5)
			if n, err := src.DeleteProbeOrders(ctx, base.Add(2*time.Hour), 10); err != nil || n != len(probes) {
				t.Fatalf("DeleteProbeOrders: %d, %v", n, err)
			}
			before, after := newOrderAt(t, mch, base.Add(-24*time.Hour), 7), newOrderAt(t, mch, base.Add(24*time.Hour), 7)
			keys := dump(t, src)["orders"]
			if first, last := keys[0][0].(string), keys[len(keys)-1][0].(string); before.OrderNo >= first || after.OrderNo <= last {
				t.Fatalf("new keys %s and %s do not surround %s..%s", before.OrderNo, after.OrderNo, first, last)
			}
			for _, o := range []*tradeunit.Order{before, after} {
				if _, _, err := src.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			// The newest events deleted: the source's counter is past its
			// largest id, and the copy must not reuse the ids between.
			doomed := newOrderAt(t, tradeunit.ProbeMchid, base.Add(time.Hour), 1)
			if _, _, err := src.CreateOrder(ctx, doomed); err != nil {
				t.Fatal(err)
			}
			handedOut := maxEventID(t, src)
			if _, err := src.DeleteProbeOrders(ctx, base.Add(2*time.Hour), 10); err != nil {
				t.Fatal(err)
			}

			verify, err := sqlstore.Sync(ctx, src, dst, sqlstore.SyncOptions{RangeRows: rangeRows, VerifyOnly: true})
			if !errors.Is(err, sqlstore.ErrCopyDiffers) || verify.RangesDiffering == 0 {
				t.Fatalf("verify after changes: got %d differing, %v; want some and ErrCopyDiffers", verify.RangesDiffering, err)
			}
			repair := mustSync(t, src, dst, sqlstore.SyncOptions{})
			if repair.RangesCopied != verify.RangesDiffering || repair.RangesCopied*2 > repair.RangesCompared {
				t.Errorf("repair copied %d of %d ranges; want the %d that differed, fewer than half", repair.RangesCopied,
					repair.RangesCompared, verify.RangesDiffering)
			}
			wantEqual(t, src, dst)
			wantSameOrders(t, src, dst)

			// The copy takes over.
			next, err := src.AllocateSequence(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			fresh := newOrderAt(t, mch, base.Add(48*time.Hour), 9)
			if _, _, err := dst.CreateOrder(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			es, err := dst.Events(ctx, handedOut, 10)
			if err != nil || len(es) != 1 || es[0].OrderNo != fresh.OrderNo || es[0].ID <= handedOut {
				t.Errorf("the copy's first event: got %+v, %v; want one of %s with an id past %d", es, err, fresh.OrderNo, handedOut)
			}
			got, err := dst.AllocateSequence(ctx, 1)
			if err != nil || got < next {
				t.Errorf("the copy's sequence: got %d, %v; want at least %d (the source's next before its last sync)", got, err, next)
			}
		})
	}
}

// TestSyncResumesAfterCancel: a sync cancelled after a few ranges leaves a
// partial copy that the next sync completes without copying again what the
// first one did.
func TestSyncResumesAfterCancel(t *testing.T) {
	for _, p := range pairs[:3] {
		t.Run(p.name, func(t *testing.T) {
			src, dst := p.src(t), p.dst(t)
			fill(t, src, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 300)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ranges := 0
			_, err := sqlstore.Sync(ctx, src, dst, sqlstore.SyncOptions{RangeRows: rangeRows, Pause: time.Millisecond,
				Progress: func(sqlstore.SyncProgress) {
					if ranges++; ranges == 8 {
						cancel()
					}
				}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled sync: got %v, want context.Canceled", err)
			}
			if _, err := sqlstore.Sync(context.Background(), src, dst, sqlstore.SyncOptions{RangeRows: rangeRows, VerifyOnly: true}); !errors.Is(err, sqlstore.ErrCopyDiffers) {
				t.Fatalf("verify of a partial copy: got %v, want ErrCopyDiffers", err)
			}
			rep := mustSync(t, src, dst, sqlstore.SyncOptions{})
			if rep.RangesCopied == 0 || rep.RangesCopied > rep.RangesCompared-7 {
				t.Errorf("resumed sync copied %d of %d ranges; want the ones after the first 7", rep.RangesCopied, rep.RangesCompared)
			}
			wantEqual(t, src, dst)
		})
	}
}

// TestSyncFrozenSourceThenDeleteData is the move's end: the source frozen,
// a last sync, a clean verify, and the old storage emptied.
func TestSyncFrozenSourceThenDeleteData(t *testing.T) {
	for _, p := range pairs[:3] {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := p.src(t), p.dst(t)
			fill(t, src, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 150)
			mustSync(t, src, dst, sqlstore.SyncOptions{})
			if err := src.DeleteData(ctx, 50, nil); !tradeunit.IsCode(err, tradeunit.CodeInvalidRequest) {
				t.Fatalf("DeleteData of a storage not frozen: got %v, want INVALID_REQUEST", err)
			}
			if err := src.Freeze(ctx); err != nil {
				t.Fatal(err)
			}
			mustSync(t, src, dst, sqlstore.SyncOptions{})
			wantEqual(t, src, dst)
			if frozen, _, err := dst.Frozen(ctx); err != nil || frozen {
				t.Errorf("the copy: frozen %v, %v; want it writable (unit_lifecycle is not copied)", frozen, err)
			}

			size, err := src.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, ts := range size.Tables {
				if ts.Name == "orders" && (ts.Rows != 150 || ts.Bytes <= 0) {
					t.Errorf("Size of orders: got %+v, want 150 rows and some bytes", ts)
				}
			}
			var last int64
			if err := src.DeleteData(ctx, 50, func(n int64) { last = n }); err != nil {
				t.Fatalf("DeleteData: %v", err)
			}
			if last != size.Rows {
				t.Errorf("DeleteData's progress ended at %d, want %d", last, size.Rows)
			}
			for name, rows := range dump(t, src) {
				if len(rows) != 0 {
					t.Errorf("%s after DeleteData: %d rows, want none", name, len(rows))
				}
			}
			if frozen, _, err := src.Frozen(ctx); err != nil || !frozen {
				t.Errorf("after DeleteData: frozen %v, %v; want still frozen", frozen, err)
			}
			wantSameOrders(t, dst, dst)
		})
	}
}

// TestSyncRejectsBadOptions lists the options Sync refuses.
func TestSyncRejectsBadOptions(t *testing.T) {
	a, b, other := openSQLite(t), openSQLite(t), openSQLite(t)
	if err := a.BindUnit(context.Background(), lifecycleUnit); err != nil {
		t.Fatal(err)
	}
	if err := other.BindUnit(context.Background(), lifecycleUnit+1); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		src, dst *sqlstore.Store
		opt      sqlstore.SyncOptions
		want     tradeunit.Code
	}{
		{"same store", a, a, sqlstore.SyncOptions{}, tradeunit.CodeParamError},
		{"negative range", a, b, sqlstore.SyncOptions{RangeRows: -1}, tradeunit.CodeParamError},
		{"another unit's copy", a, other, sqlstore.SyncOptions{}, tradeunit.CodeInvalidRequest},
	} {
		if _, err := sqlstore.Sync(context.Background(), tt.src, tt.dst, tt.opt); !tradeunit.IsCode(err, tt.want) {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.want)
		}
	}
}

// TestSyncDeletesWhatSourceLacks: rows only the copy has — before the
// source's first key, between, and past its last (the open-ended tail) —
// are deleted.
func TestSyncDeletesWhatSourceLacks(t *testing.T) {
	for _, p := range pairs[:3] {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := p.src(t), p.dst(t)
			base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			fill(t, src, base, 90)
			mustSync(t, src, dst, sqlstore.SyncOptions{})
			for _, at := range []time.Time{base.Add(-time.Hour), base.Add(30 * time.Second), base.Add(time.Hour)} {
				if _, _, err := dst.CreateOrder(ctx, newOrderAt(t, mch, at, 3)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := dst.SupersedeAttempt(ctx, "zz", "only-on-the-copy", 3); err != nil && !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
				t.Fatal(err)
			}
			if _, err := dst.AcquireRelay(ctx, "zz-relay", "h", time.Minute, base); err != nil {
				t.Fatal(err)
			}
			rep := mustSync(t, src, dst, sqlstore.SyncOptions{})
			if rep.RangesCopied == 0 {
				t.Fatal("sync copied nothing over a copy with rows of its own")
			}
			wantEqual(t, src, dst)
		})
	}
}
