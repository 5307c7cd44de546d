package directory

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// world is a directory shard and two units, each on its own SQLite
// database, that the reconciler reaches in process.
type world struct {
	shard  *dirstore.Store
	units  map[tradeunit.UnitID]*unit.Service
	dialer *localDialer
	reg    *prometheus.Registry
	routes *routing.Memory[routing.Table, *routing.Table]
	rec    *Reconciler
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	shard, err := dirstore.Open(ctx, dsn.MustParse("sqlite:"+filepath.Join(dir, "directory.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shard.Close() })
	w := &world{shard: shard, units: map[tradeunit.UnitID]*unit.Service{}, reg: prometheus.NewRegistry(),
		dialer: &localDialer{units: map[string]*unit.Service{}, unreachable: map[string]bool{}}}
	table := &routing.Table{Revision: 1}
	for id := tradeunit.UnitID(1); id <= 2; id++ {
		store, err := sqlstore.Open(ctx, dsn.MustParse(fmt.Sprintf("sqlite:%s/unit%d.db", dir, id)), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		svc, err := unit.New(unit.DefaultConfig(id), store)
		if err != nil {
			t.Fatal(err)
		}
		w.units[id] = svc
		w.dialer.units[addrOf(id)] = svc
		table.Units = append(table.Units, routing.Unit{ID: id, LogicAddrs: []string{addrOf(id)}, Available: true, AcceptNew: true})
	}
	routes, err := routing.NewMemoryTable(table)
	if err != nil {
		t.Fatal(err)
	}
	w.routes = routes
	cfg := DefaultReconcilerConfig()
	cfg.Batch = 2 // several reads per pass
	w.rec, err = NewReconciler(cfg, shard, routes, w.dialer, w.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func addrOf(id tradeunit.UnitID) string { return fmt.Sprintf("unit-%d:9000", id) }

// create makes key's order on unit u with attempt a.
func (w *world) create(t *testing.T, key tradeunit.MerchantKey, u tradeunit.UnitID, a uint64) *tradeunit.Order {
	t.Helper()
	o, err := w.units[u].CreateOrder(context.Background(), tradeunit.CreateOrderRequest{Mchid: key.Mchid, OutTradeNo: key.Value,
		Description: "reconciled", Amount: tradeunit.Amount{Total: 100}, Attempt: a})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// put stores e as new, last changed at updated.
func (w *world) put(t *testing.T, e *tradeunit.DirectoryEntry, updated time.Time) {
	t.Helper()
	e.Version, e.Created, e.Updated = 1, updated, updated
	if e.Fingerprint == "" {
		e.Fingerprint = (&tradeunit.CreateOrderRequest{Description: "reconciled", Amount: tradeunit.Amount{Total: 100, Currency: "CNY"}}).Fingerprint()
	}
	if res := w.shard.Put(context.Background(), []*tradeunit.DirectoryEntry{e}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

func (w *world) entry(t *testing.T, key tradeunit.MerchantKey) *tradeunit.DirectoryEntry {
	t.Helper()
	e, err := w.shard.Entry(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) order(t *testing.T, o *tradeunit.Order) *tradeunit.Order {
	t.Helper()
	no, err := orderno.Parse(o.OrderNo)
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.units[no.Unit].Order(context.Background(), o.Mchid, o.OrderNo)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func key(out string) tradeunit.MerchantKey {
	return tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: out}
}

var long = time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)

func TestReconcilerClosesOrphans(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	k := key("orphan-0001")
	winner := w.create(t, k, 1, 11)
	orphan := w.create(t, k, 2, 22)
	w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryCommitted, RecordNo: winner.OrderNo,
		Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, long)

	st, err := w.rec.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (PassStats{Entries: 1, Settled: 1, Closed: 1, Cleared: 1}) {
		t.Fatalf("pass = %+v", st)
	}
	if o := w.order(t, orphan); o.State != tradeunit.StateClosed || o.CloseReason != tradeunit.CloseSuperseded {
		t.Fatalf("orphan = %s %s, want CLOSED as superseded", o.State, o.CloseReason)
	}
	if _, err := w.units[2].PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: k.Mchid, OrderNo: orphan.OrderNo, PaymentID: "p-1"}); !tradeunit.IsCode(err, tradeunit.CodeOrderSuperseded) {
		t.Fatalf("paying the orphan: %v, want ORDER_SUPERSEDED", err)
	}
	if o := w.order(t, winner); o.State != tradeunit.StateNotPay {
		t.Fatalf("winner = %s, want NOTPAY", o.State)
	}
	if e := w.entry(t, k); len(e.Abandoned) != 0 || e.RecordNo != winner.OrderNo || e.Version != 2 {
		t.Fatalf("entry = %+v, want the winner's, with no abandoned attempt", e)
	}
	if got := testutil.ToFloat64(w.rec.metrics.closed); got != 1 {
		t.Fatalf("orphans closed metric = %v", got)
	}
	// Nothing is left: the next pass reads nothing.
	if st, err := w.rec.Pass(ctx); err != nil || st != (PassStats{}) {
		t.Fatalf("second pass = %+v, %v", st, err)
	}
}

func TestReconcilerSettlesAttempts(t *testing.T) {
	ctx := context.Background()
	committed := func(w *world, t *testing.T, k tradeunit.MerchantKey, abandoned ...tradeunit.Attempt) *tradeunit.Order {
		o := w.create(t, k, 1, 11)
		w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryCommitted, RecordNo: o.OrderNo,
			Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: abandoned}, long)
		return o
	}
	tests := []struct {
		name string
		// setup makes the units' orders and the entry of k; it returns the
		// order the entry must end committed to ("" for none).
		setup     func(w *world, t *testing.T, k tradeunit.MerchantKey) string
		want      PassStats
		abandoned int // attempts the entry lists after the pass
		// refused is an attempt on unit 2 that must be refused afterwards.
		refused uint64
	}{
		{name: "an attempt that made nothing is refused for good",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				return committed(w, t, k, tradeunit.Attempt{Unit: 2, ID: 22}).OrderNo
			},
			want: PassStats{Entries: 1, Settled: 1, Cleared: 1}, refused: 22},
		{name: "the winner's own attempt listed as abandoned is not closed",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				return committed(w, t, k, tradeunit.Attempt{Unit: 1, ID: 11}).OrderNo
			},
			want: PassStats{Entries: 1, Settled: 1, Cleared: 1}},
		{name: "a unit that cannot answer keeps its attempt for the next pass",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				w.dialer.set(addrOf(2), true)
				return committed(w, t, k, tradeunit.Attempt{Unit: 2, ID: 22}).OrderNo
			},
			want: PassStats{Entries: 1, Waiting: 1}, abandoned: 1},
		{name: "a unit no longer in the table keeps its attempt",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				return committed(w, t, k, tradeunit.Attempt{Unit: 9, ID: 99}).OrderNo
			},
			want: PassStats{Entries: 1, Waiting: 1}, abandoned: 1},
		{name: "a stale pending entry is committed to the order an abandoned attempt made",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				o := w.create(t, k, 2, 22)
				w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryPending,
					Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, long)
				return o.OrderNo
			},
			want: PassStats{Entries: 1, Settled: 1, Cleared: 1}},
		{name: "a stale pending entry of attempts that made nothing refuses them all",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryPending,
					Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, long)
				return ""
			},
			want: PassStats{Entries: 1, Settled: 1, Cleared: 1}, refused: 22},
		{name: "a pending entry a create is working on is left alone",
			setup: func(w *world, t *testing.T, k tradeunit.MerchantKey) string {
				w.create(t, k, 2, 22)
				w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryPending,
					Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, time.Now().UTC())
				return ""
			},
			want: PassStats{Entries: 1}, abandoned: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			k := key("settle-0001")
			want := tt.setup(w, t, k)
			st, err := w.rec.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st != tt.want {
				t.Fatalf("pass = %+v, want %+v", st, tt.want)
			}
			e := w.entry(t, k)
			if len(e.Abandoned) != tt.abandoned || e.RecordNo != want || (want != "") != (e.State == tradeunit.EntryCommitted) {
				t.Fatalf("entry = %+v, want %d abandoned attempts, committed to %q", e, tt.abandoned, want)
			}
			if tt.refused != 0 {
				_, err := w.units[2].CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: k.Mchid, OutTradeNo: k.Value,
					Description: "reconciled", Amount: tradeunit.Amount{Total: 100}, Attempt: tt.refused})
				if !tradeunit.IsCode(err, tradeunit.CodeAttemptSuperseded) {
					t.Fatalf("a create with the settled attempt: %v, want ATTEMPT_SUPERSEDED", err)
				}
			}
		})
	}
}

func TestReconcilerResumesWhenTheUnitIsBack(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.dialer.set(addrOf(2), true)
	var orphans []*tradeunit.Order
	for i := range 5 { // more than a read of the shard
		k := key(fmt.Sprintf("back-%04d", i))
		winner := w.create(t, k, 1, 11)
		orphans = append(orphans, w.create(t, k, 2, 22))
		w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryCommitted, RecordNo: winner.OrderNo,
			Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, long)
	}
	if st, err := w.rec.Pass(ctx); err != nil || st != (PassStats{Entries: 5, Waiting: 5}) {
		t.Fatalf("pass with unit 2 unreachable = %+v, %v", st, err)
	}
	if got := testutil.ToFloat64(w.rec.metrics.backlog); got != 5 {
		t.Fatalf("backlog = %v, want 5", got)
	}
	w.dialer.set(addrOf(2), false)
	if st, err := w.rec.Pass(ctx); err != nil || st != (PassStats{Entries: 5, Settled: 5, Closed: 5, Cleared: 5}) {
		t.Fatalf("pass with unit 2 back = %+v, %v", st, err)
	}
	for _, o := range orphans {
		if got := w.order(t, o); got.State != tradeunit.StateClosed {
			t.Fatalf("orphan %s = %s, want CLOSED", o.OrderNo, got.State)
		}
	}
	if got := testutil.ToFloat64(w.rec.metrics.backlog); got != 0 {
		t.Fatalf("backlog = %v, want 0", got)
	}
}

func TestReconcilerCountsAPaidOrphan(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	k := key("paid-0001")
	winner := w.create(t, k, 1, 11)
	orphan := w.create(t, k, 2, 22)
	if _, err := w.units[2].PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: k.Mchid, OrderNo: orphan.OrderNo, PaymentID: "p-1"}); err != nil {
		t.Fatal(err)
	}
	w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryCommitted, RecordNo: winner.OrderNo,
		Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, long)
	if _, err := w.rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(w.rec.metrics.paidOrphans); got != 1 {
		t.Fatalf("paid orphans = %v, want 1", got)
	}
	if o := w.order(t, orphan); o.State != tradeunit.StateSuccess {
		t.Fatalf("the paid orphan = %s: the reconciler must not touch a paid order", o.State)
	}
}

// localDialer connects to units in process; an unreachable address gives
// no answer.
type localDialer struct {
	mu          sync.Mutex
	units       map[string]*unit.Service
	unreachable map[string]bool
}

func (d *localDialer) set(addr string, unreachable bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unreachable[addr] = unreachable
}

func (d *localDialer) Conn(addr string) (tradeunit.LogicConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unreachable[addr] || d.units[addr] == nil {
		return nil, tradeunit.NoAnswer("test", "unreachable", fmt.Errorf("dial %s: connection refused", addr))
	}
	return localConn{d.units[addr]}, nil
}

func (d *localDialer) Directory(addr string) (tradeunit.DirectoryConn, error) {
	return nil, fmt.Errorf("dial %s: no directory here", addr)
}
func (d *localDialer) Retain(map[string]bool) []string { return nil }
func (d *localDialer) Close() error                    { return nil }

type localConn struct{ tradeunit.OrderService }

func (localConn) Down() bool { return false }
func (localConn) Reconnect() {}
func (localConn) Silent()    {}

// TestReconcilerLeavesMovingBucketsAlone: the reconciler of shard 1 settles
// nothing of a bucket the table gives another shard, or freezes for a
// move (which copies its entries as they are), and settles it once the
// bucket is shard 1's again.
func TestReconcilerLeavesMovingBucketsAlone(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	k := key("moving-0001")
	winner := w.create(t, k, 1, 11)
	orphan := w.create(t, k, 2, 22)
	w.put(t, &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryCommitted, RecordNo: winner.OrderNo,
		Attempt: tradeunit.Attempt{Unit: 1, ID: 11}, Abandoned: []tradeunit.Attempt{{Unit: 2, ID: 22}}}, long)
	b := k.Bucket()
	all := []routing.BucketRange{routing.AllBuckets}
	var rest []routing.BucketRange // every bucket but b
	if b > 0 {
		rest = append(rest, routing.BucketRange{From: 0, To: b - 1})
	}
	if b < tradeunit.DirectoryBuckets-1 {
		rest = append(rest, routing.BucketRange{From: b + 1, To: tradeunit.DirectoryBuckets - 1})
	}
	setDirectory := func(one, two, frozen []routing.BucketRange) {
		t.Helper()
		if _, err := w.routes.Update(ctx, routing.Change{}, func(tb *routing.Table) error {
			tb.Directory = &routing.Directory{Shards: []routing.DirectoryShard{
				{Shard: 1, Buckets: one, Frozen: frozen, LogicAddrs: []string{"shard-1:9000"}, Available: true},
				{Shard: 2, Buckets: two, LogicAddrs: []string{"shard-2:9000"}, Available: true}}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultReconcilerConfig()
	cfg.Shard = 1
	rec, err := NewReconciler(cfg, w.shard, w.routes, w.dialer, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		one, two  []routing.BucketRange
		frozen    []routing.BucketRange
		want      PassStats
		wantState tradeunit.TradeState
	}{
		{"another shard's bucket", rest, []routing.BucketRange{{From: b, To: b}}, nil, PassStats{Moving: 1}, tradeunit.StateNotPay},
		{"a frozen bucket", all, nil, []routing.BucketRange{{From: b, To: b}}, PassStats{Moving: 1}, tradeunit.StateNotPay},
		{"its own bucket again", all, nil, nil, PassStats{Entries: 1, Settled: 1, Closed: 1, Cleared: 1}, tradeunit.StateClosed},
	}
	for _, st := range steps {
		setDirectory(st.one, st.two, st.frozen)
		got, err := rec.Pass(ctx)
		if err != nil || got != st.want {
			t.Fatalf("%s: pass = %+v, %v; want %+v", st.name, got, err, st.want)
		}
		if o := w.order(t, orphan); o.State != st.wantState {
			t.Fatalf("%s: orphan is %s, want %s", st.name, o.State, st.wantState)
		}
	}
}
