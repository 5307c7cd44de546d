package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"tradeunit"
	"tradeunit/routing"
)

func backfillOptions() BackfillOptions {
	o := DefaultBackfillOptions()
	o.Batch, o.Page = 3, 4 // several batches and pages per unit
	return o
}

func mustBackfill(t *testing.T, w *dirWorld, o BackfillOptions) *BackfillResult {
	t.Helper()
	res, err := w.a.Backfill(context.Background(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	return res
}

func unitResult(t *testing.T, res *BackfillResult, u tradeunit.UnitID) UnitBackfill {
	t.Helper()
	for _, got := range res.Units {
		if got.Unit == u {
			return got
		}
	}
	t.Fatalf("no result for unit %d in %+v", u, res.Units)
	return UnitBackfill{}
}

// TestBackfillRegistersRecordsMadeBeforeTheDirectory: every order and
// refund of every unit gets a committed entry naming it, with the
// fingerprint a create through the directory would have given it; probe
// orders and orders made through the directory get none; a second run
// finds everything there and writes nothing.
func TestBackfillRegistersRecordsMadeBeforeTheDirectory(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	var orders []*tradeunit.Order
	var refunds []*tradeunit.Refund
	for u := tradeunit.UnitID(1); u <= 2; u++ {
		for i := range 9 {
			o := w.order(t, u, fmt.Sprintf("old-%d-%02d", u, i), int64(100+i))
			orders = append(orders, o)
			if i%3 == 0 {
				refunds = append(refunds, w.refund(t, o, fmt.Sprintf("old-refund-%d-%02d", u, i), 40))
			}
		}
	}
	probe, err := w.units[1].CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: tradeunit.ProbeMchid, OutTradeNo: "probe-000001",
		Description: "probe", Amount: tradeunit.Amount{Total: 1}})
	if err != nil {
		t.Fatal(err)
	}
	viaDirectory, err := w.units[2].CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mch, OutTradeNo: "new-000001",
		Description: "through the directory", Amount: tradeunit.Amount{Total: 5}, Attempt: 77})
	if err != nil {
		t.Fatal(err)
	}

	var progress []tradeunit.UnitID
	o := backfillOptions()
	o.Progress = func(u UnitBackfill) { progress = append(progress, u.Unit) }
	res := mustBackfill(t, w, o)
	if !res.Verified || len(res.Problems) != 0 || !slices.Equal(progress, []tradeunit.UnitID{1, 2}) {
		t.Fatalf("backfill: verified %v, problems %+v, progress %v", res.Verified, res.Problems, progress)
	}
	want := map[tradeunit.UnitID]UnitBackfill{
		1: {Unit: 1, Orders: RecordCounts{Seen: 9, Registered: 9, Verified: 9}, Refunds: RecordCounts{Seen: 3, Registered: 3, Verified: 3}},
		2: {Unit: 2, Orders: RecordCounts{Seen: 10, ViaDirectory: 1, Registered: 9, Verified: 9}, Refunds: RecordCounts{Seen: 3, Registered: 3, Verified: 3}},
	}
	for u, wantU := range want {
		if got := unitResult(t, res, u); got != wantU {
			t.Errorf("unit %d:\n got %+v\nwant %+v", u, got, wantU)
		}
	}
	for _, o := range orders {
		e := w.entry(t, orderKey(o.OutTradeNo))
		if e == nil || e.State != tradeunit.EntryCommitted || e.RecordNo != o.OrderNo || e.Fingerprint != orderFingerprint(o) ||
			e.Version != 1 || e.Attempt.Unit != w.unitOf(t, o.OrderNo) || e.Attempt.ID == 0 || len(e.Abandoned) != 0 {
			t.Fatalf("entry of %s: %+v, want committed to %s with a create's fingerprint", o.OutTradeNo, e, o.OrderNo)
		}
	}
	for _, f := range refunds {
		fp := (&tradeunit.CreateRefundRequest{Mchid: f.Mchid, OrderNo: f.OrderNo, OutRefundNo: f.OutRefundNo,
			Amount: tradeunit.RefundAmount{Refund: f.Amount.Refund, Currency: "CNY"}, Reason: f.Reason}).Fingerprint()
		if e := w.entry(t, refundKey(f.OutRefundNo)); e == nil || e.State != tradeunit.EntryCommitted || e.RecordNo != f.OrderNo || e.Fingerprint != fp {
			t.Fatalf("entry of refund %s: %+v, want committed to order %s with a refund request's fingerprint", f.OutRefundNo, e, f.OrderNo)
		}
	}
	for _, k := range []tradeunit.MerchantKey{{Mchid: tradeunit.ProbeMchid, Kind: tradeunit.KeyOrder, Value: probe.OutTradeNo}, orderKey(viaDirectory.OutTradeNo)} {
		if e := w.entry(t, k); e != nil {
			t.Fatalf("%s got an entry: %+v", k, e)
		}
	}

	again := mustBackfill(t, w, backfillOptions())
	orderTotals, refundTotals := again.Totals()
	if !again.Verified || orderTotals != (RecordCounts{Seen: 19, ViaDirectory: 1, Already: 18, Verified: 18}) ||
		refundTotals != (RecordCounts{Seen: 6, Already: 6, Verified: 6}) {
		t.Fatalf("second run: verified %v, orders %+v, refunds %+v; want everything already there", again.Verified, orderTotals, refundTotals)
	}
}

// TestBackfillMeetsExistingEntries: what the backfill does with an entry
// that is there before it, one case per kind of entry.
func TestBackfillMeetsExistingEntries(t *testing.T) {
	type world struct {
		*dirWorld
		order  *tradeunit.Order  // of unit 1: the record under test, or the refund's order
		refund *tradeunit.Refund // the record under test for refund cases
	}
	pending := func(k tradeunit.MerchantKey, unit tradeunit.UnitID, id uint64) *tradeunit.DirectoryEntry {
		return &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryPending, Attempt: tradeunit.Attempt{Unit: unit, ID: id}, Fingerprint: "fp-of-a-create"}
	}
	tests := []struct {
		name    string
		refunds bool
		setup   func(t *testing.T, w world) tradeunit.MerchantKey // returns the key under test
		want    RecordCounts                                      // of the kind under test, on unit 1
		problem string                                            // the kind of problem listed; "" for none
		check   func(t *testing.T, w world, e *tradeunit.DirectoryEntry)
	}{
		{name: "committed to the same order is already there",
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				e := orderEntry(1, w.order, w.order.CreateTime)
				w.put(t, e)
				return e.Key
			},
			want: RecordCounts{Seen: 1, Already: 1, Verified: 1},
			check: func(t *testing.T, w world, e *tradeunit.DirectoryEntry) {
				if e.Version != 1 {
					t.Fatalf("entry rewritten: %+v", e)
				}
			}},
		{name: "committed to another order is a conflict, never overwritten",
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				dup := *w.order
				dup.OrderNo = "1000020000000000000000000011"
				w.put(t, orderEntry(2, &dup, dup.CreateTime))
				return orderKey(w.order.OutTradeNo)
			},
			want: RecordCounts{Seen: 1, Conflicts: 1, Unverified: 1}, problem: "conflict",
			check: func(t *testing.T, w world, e *tradeunit.DirectoryEntry) {
				if e.RecordNo != "1000020000000000000000000011" || e.Version != 1 {
					t.Fatalf("the conflicting entry changed: %+v", e)
				}
			}},
		{name: "pending on another unit is committed to the order, its attempt abandoned",
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				k := orderKey(w.order.OutTradeNo)
				w.put(t, pending(k, 2, 42))
				return k
			},
			want: RecordCounts{Seen: 1, Registered: 1, TookOver: 1, Verified: 1},
			check: func(t *testing.T, w world, e *tradeunit.DirectoryEntry) {
				if e.Version != 2 || e.Fingerprint != orderFingerprint(w.order) ||
					!slices.Equal(e.Abandoned, []tradeunit.Attempt{{Unit: 2, ID: 42}}) || e.Attempt.Unit != 1 {
					t.Fatalf("entry: %+v, want it committed over the pending one with unit 2's attempt abandoned", e)
				}
			}},
		{name: "a frozen bucket is deferred",
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				k := orderKey(w.order.OutTradeNo)
				freeze(t, w.dirWorld, k.Bucket())
				return k
			},
			want: RecordCounts{Seen: 1, Deferred: 1, Unverified: 1}, problem: "deferred"},
		{name: "a masked shard's key is deferred",
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				k := orderKey(w.order.OutTradeNo)
				w.update(t, func(d *routing.Directory) {
					s, _ := d.ShardOf(k.Bucket())
					for i := range d.Shards {
						if d.Shards[i].Shard == s.Shard {
							d.Shards[i].Available = false
						}
					}
				})
				return k
			},
			want: RecordCounts{Seen: 1, Deferred: 1, Unverified: 1}, problem: "deferred"},
		{name: "a pending refund on the record's unit is committed to it", refunds: true,
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				k := refundKey(w.refund.OutRefundNo)
				w.put(t, pending(k, 1, 43))
				return k
			},
			want: RecordCounts{Seen: 1, Registered: 1, TookOver: 1, Verified: 1},
			check: func(t *testing.T, w world, e *tradeunit.DirectoryEntry) {
				if e.Version != 2 || e.RecordNo != w.order.OrderNo || len(e.Abandoned) != 0 || e.Attempt != (tradeunit.Attempt{Unit: 1, ID: 43}) {
					t.Fatalf("entry: %+v", e)
				}
			}},
		{name: "a pending refund on another unit is deferred: it may be made there", refunds: true,
			setup: func(t *testing.T, w world) tradeunit.MerchantKey {
				k := refundKey(w.refund.OutRefundNo)
				w.put(t, pending(k, 2, 44))
				return k
			},
			want: RecordCounts{Seen: 1, Deferred: 1, Unverified: 1}, problem: "deferred",
			check: func(t *testing.T, w world, e *tradeunit.DirectoryEntry) {
				if e.State != tradeunit.EntryPending || e.Version != 1 {
					t.Fatalf("entry changed: %+v", e)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := world{dirWorld: newDirWorld(t)}
			w.order = w.dirWorld.order(t, 1, "old-000001", 100)
			if tt.refunds {
				w.refund = w.dirWorld.refund(t, w.order, "old-refund-1", 30)
				w.put(t, orderEntry(1, w.order, w.order.CreateTime)) // the order is registered already
			}
			k := tt.setup(t, w)
			res := mustBackfill(t, w.dirWorld, backfillOptions())
			got := unitResult(t, res, 1).Orders
			if tt.refunds {
				got = unitResult(t, res, 1).Refunds
			}
			if got != tt.want {
				t.Fatalf("counts:\n got %+v\nwant %+v", got, tt.want)
			}
			if res.Verified != (tt.want.Unverified == 0) {
				t.Fatalf("verified = %v with %d unverified", res.Verified, tt.want.Unverified)
			}
			var kinds []string
			for _, p := range res.Problems {
				kinds = append(kinds, p.Kind)
				if p.Key != k.String() || p.Unit != 1 || p.Detail == "" {
					t.Fatalf("problem %+v, want one of %s on unit 1, explained", p, k)
				}
			}
			if wantKinds := []string{tt.problem}; tt.problem == "" && len(kinds) != 0 || tt.problem != "" && !slices.Equal(kinds, wantKinds) {
				t.Fatalf("problems %v, want %q", kinds, tt.problem)
			}
			if tt.check != nil {
				tt.check(t, w, w.entry(t, k))
			}
		})
	}
}

// freeze freezes bucket b on the shard that holds it.
func freeze(t *testing.T, w *dirWorld, b int) {
	t.Helper()
	w.update(t, func(d *routing.Directory) {
		s, _ := d.ShardOf(b)
		for i := range d.Shards {
			if d.Shards[i].Shard == s.Shard {
				d.Shards[i].Frozen = append(d.Shards[i].Frozen, routing.BucketRange{From: b, To: b})
			}
		}
	})
}

// TestBackfillReportsADuplicateOfTwoUnits: two units that both made an
// order for one out_trade_no before the directory: the first unit's is
// registered, the second's is a conflict naming both, and neither changes.
func TestBackfillReportsADuplicateOfTwoUnits(t *testing.T) {
	w := newDirWorld(t)
	first, second := w.order(t, 1, "twice-0001", 100), w.order(t, 2, "twice-0001", 100)
	res := mustBackfill(t, w, backfillOptions())
	if res.Verified || len(res.Problems) != 1 {
		t.Fatalf("verified %v, problems %+v; want one conflict", res.Verified, res.Problems)
	}
	p := res.Problems[0]
	if p.Kind != "conflict" || p.Unit != 2 || p.RecordNo != second.OrderNo || p.EntryRecordNo != first.OrderNo || !strings.Contains(p.Detail, "duplicate") {
		t.Fatalf("problem %+v, want unit 2's %s in conflict with %s", p, second.OrderNo, first.OrderNo)
	}
	if got := unitResult(t, res, 2).Orders; got != (RecordCounts{Seen: 1, Conflicts: 1, Unverified: 1}) {
		t.Fatalf("unit 2: %+v", got)
	}
	if e := w.entry(t, orderKey("twice-0001")); e.RecordNo != first.OrderNo {
		t.Fatalf("entry names %s, want %s", e.RecordNo, first.OrderNo)
	}
}

// flakyDialer is the pool's dialer, but every shard Put after the first
// okPuts writes its entries and then loses the answer, as a backfill whose
// process dies mid-run does.
type flakyDialer struct {
	tradeunit.LogicDialer
	okPuts int64
	puts   atomic.Int64
}

func (d *flakyDialer) Directory(addr string) (tradeunit.DirectoryConn, error) {
	c, err := d.LogicDialer.Directory(addr)
	if err != nil {
		return nil, err
	}
	return &flakyConn{DirectoryConn: c, d: d}, nil
}

type flakyConn struct {
	tradeunit.DirectoryConn
	d *flakyDialer
}

func (c *flakyConn) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	rs := c.DirectoryConn.Put(ctx, entries)
	if c.d.puts.Add(1) > c.d.okPuts {
		for i := range rs {
			rs[i] = tradeunit.PutResult{Err: tradeunit.NoAnswer("test", "the backfill died", nil)}
		}
	}
	return rs
}

// TestBackfillResumesAfterACrash: a run that stops with answers lost
// leaves what it wrote; the next run registers the rest and counts the
// first run's entries as already there, exactly once each.
func TestBackfillResumesAfterACrash(t *testing.T) {
	w := newDirWorld(t)
	for u := tradeunit.UnitID(1); u <= 2; u++ {
		for i := range 8 {
			w.order(t, u, fmt.Sprintf("crash-%d-%02d", u, i), 100)
		}
	}
	w.a.Dialer = &flakyDialer{LogicDialer: w.pool, okPuts: 2}
	o := backfillOptions()
	o.Batch = 2
	res, err := w.a.Backfill(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "run again") {
		t.Fatalf("a run whose answers are lost: %v, want an error saying to run again", err)
	}
	firstOrders, _ := res.Totals()
	if firstOrders.Registered != 4 {
		t.Fatalf("first run registered %d (answered puts of 2), want 4: %+v", firstOrders.Registered, firstOrders)
	}
	w.a.Dialer = w.pool
	res = mustBackfill(t, w, o)
	orders, _ := res.Totals()
	// The first run's 2 answered puts, and the one whose answer was lost
	// (its entries were written): 6 already there, the other 10 new.
	if !res.Verified || orders != (RecordCounts{Seen: 16, Registered: 10, Already: 6, Verified: 16}) {
		t.Fatalf("resumed run: verified %v, orders %+v", res.Verified, orders)
	}
}

// TestBackfillRefusesWithoutTheDirectory: nothing to write to, or nothing
// to read, is said before anything is read.
func TestBackfillRefusesWithoutTheDirectory(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	bad := BackfillOptions{Batch: 0, Page: 1, CallTimeout: 1, Workers: 1}
	if _, err := w.a.Backfill(ctx, bad); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Fatalf("batch 0: %v, want PARAM_ERROR", err)
	}
	if _, err := w.routes.Update(ctx, routing.Change{}, func(tb *routing.Table) error { tb.Directory = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.a.Backfill(ctx, DefaultBackfillOptions()); err == nil || !strings.Contains(err.Error(), "no directory") {
		t.Fatalf("no directory: %v", err)
	}
}
