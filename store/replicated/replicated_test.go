package replicated_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/replication/localdb"
	"tradeunit/store/replicated"
	"tradeunit/unit"
)

// startSet starts a replicated set of three MariaDB servers for the test,
// skipping without the MariaDB binaries (failing under CI=true).
func startSet(t *testing.T) *localdb.Set {
	t.Helper()
	if err := localdb.Available(); err != nil {
		if errors.Is(err, localdb.ErrNoMariaDB) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	set, err := localdb.Start(ctx, localdb.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

// health records what OnHealth reported.
type health struct {
	mu      sync.Mutex
	serving bool
	why     string
}

func (h *health) set(serving bool, why string) {
	h.mu.Lock()
	h.serving, h.why = serving, why
	h.mu.Unlock()
}

func (h *health) get() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.serving, h.why
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func root(t *testing.T, in *localdb.Instance, q string) {
	t.Helper()
	db, err := sql.Open("mysql", in.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %s: %v", in.Name, q, err)
	}
}

// TestStorage: a logic service over a replicated set, following the
// routing table: it writes to the primary; eventual reads go to a replica
// under the lag bound and, with the appliers stopped, to the primary once
// the bound has passed; a read-only (fenced) primary's reads are not
// trusted; a primary whose replicas stop acknowledging is reported unable
// to take changes, and able again when they return.
func TestStorage(t *testing.T) {
	set := startSet(t)
	const db = "tradeunit_u1"
	topology := make(chan replicated.Topology, 1)
	topology <- replicated.Topology{Revision: 1, Primary: set.Instances[0].AppStorage(db),
		Replicas: []dsn.DSN{set.Instances[1].AppStorage(db), set.Instances[2].AppStorage(db)}}
	defer close(topology)
	h := &health{}
	const maxLag = 600 * time.Millisecond
	cfg := replicated.DefaultConfig()
	cfg.MaxLag, cfg.CheckEvery, cfg.LagEvery, cfg.Heartbeat = maxLag, 100*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	storage, err := replicated.OpenUnit(cfg, 1, replicated.Deps{Topology: topology, Passwords: set.Passwords(),
		OnHealth: h.set, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer storage.Close()
	svc, err := unit.NewWithStorage(unit.DefaultConfig(1), storage)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "unit serving", func() bool { ok, _ := h.get(); return ok })

	ctx := context.Background()
	o, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: "replicated-1",
		Description: "d", Amount: tradeunit.Amount{Total: 100}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Order(ctx, o.Mchid, o.OrderNo)
	if err != nil || got.Read != (tradeunit.ReadInfo{}) {
		t.Fatalf("real-time read: got %+v, %v; want the primary's", got, err)
	}
	eventual := tradeunit.WithConsistency(ctx, tradeunit.Eventual)
	eventually(t, 5*time.Second, "an eventual read served by a replica", func() bool {
		got, err := svc.Order(eventual, o.Mchid, o.OrderNo)
		return err == nil && got.Read.Source == tradeunit.FromReplica
	})
	got, _ = svc.Order(eventual, o.Mchid, o.OrderNo)
	t.Logf("eventual read from a replica: staleness %v", got.Read.Staleness)
	if got.Read.Staleness >= maxLag || got.Read.Degraded {
		t.Errorf("eventual read: got %+v, want a replica within %v, not degraded", got.Read, maxLag)
	}

	// Stop both appliers: from the bound on, eventual reads go to the primary.
	for _, in := range set.Instances[1:] {
		root(t, in, "STOP SLAVE SQL_THREAD")
	}
	stopped := time.Now()
	paid, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	for time.Since(stopped) < maxLag+300*time.Millisecond {
		start := time.Now()
		got, err := svc.Order(eventual, o.Mchid, o.OrderNo)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != paid.State && start.Sub(stopped) >= maxLag {
			t.Fatalf("eventual read %v after the appliers stopped: got %s from %q (staleness %v), want %s: older than the bound %v",
				start.Sub(stopped), got.State, got.Read.Source, got.Read.Staleness, paid.State, maxLag)
		}
		time.Sleep(10 * time.Millisecond) // reads paced through the bound and past it
	}
	got, err = svc.Order(eventual, o.Mchid, o.OrderNo)
	if err != nil || got.Read.Source != tradeunit.FromPrimary || got.State != tradeunit.StateSuccess {
		t.Fatalf("eventual read with every replica past the bound: got %+v, %v; want the primary's SUCCESS", got, err)
	}
	for _, in := range set.Instances[1:] {
		root(t, in, "START SLAVE SQL_THREAD")
	}

	// A fenced primary (read_only) may have been replaced already: its
	// reads are not trusted, a replica serves them, marked degraded.
	root(t, set.Instances[0], "SET GLOBAL read_only = ON")
	got, err = svc.Order(ctx, o.Mchid, o.OrderNo)
	if err != nil || got.Read.Source != tradeunit.FromReplica || !got.Read.Degraded {
		t.Errorf("real-time read on a fenced primary: got %+v, %v; want a degraded read from a replica", got, err)
	}
	root(t, set.Instances[0], "SET GLOBAL read_only = OFF")
	eventually(t, 5*time.Second, "unit serving after the primary is writable again", func() bool { ok, _ := h.get(); return ok })

	// No replica acknowledges: the unit takes no changes, and says so.
	for _, in := range set.Instances[1:] {
		root(t, in, "STOP SLAVE IO_THREAD")
	}
	eventually(t, 5*time.Second, "unit not serving without acknowledging replicas", func() bool { ok, _ := h.get(); return !ok })
	_, why := h.get()
	t.Logf("without acknowledging replicas: %s", why)
	if _, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: "replicated-2",
		Description: "d", Amount: tradeunit.Amount{Total: 100}}); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
		t.Errorf("create without acknowledging replicas: got %v, want UNIT_UNAVAILABLE", err)
	}
	for _, in := range set.Instances[1:] {
		root(t, in, "START SLAVE IO_THREAD")
	}
	eventually(t, 10*time.Second, "unit serving again", func() bool { ok, _ := h.get(); return ok })
}

// TestShard: a directory shard over a replicated set: entries are written
// and read on the primary; on a fenced primary a committed entry is still
// read (it never changes), an absent or pending one is not trusted, and
// nothing is written; with the primary gone, a replica serves committed
// entries only.
func TestShard(t *testing.T) {
	set := startSet(t)
	const db = "tradeunit_d1"
	topology := make(chan replicated.Topology, 1)
	topology <- replicated.Topology{Revision: 1, Primary: set.Instances[0].AppStorage(db),
		Replicas: []dsn.DSN{set.Instances[1].AppStorage(db), set.Instances[2].AppStorage(db)}}
	defer close(topology)
	h := &health{}
	cfg := replicated.DefaultConfig()
	cfg.CheckEvery = 100 * time.Millisecond
	shard, err := replicated.OpenShard(cfg, "directory shard 1", replicated.Deps{Topology: topology, Passwords: set.Passwords(),
		OnHealth: h.set, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer shard.Close()
	eventually(t, 10*time.Second, "shard serving", func() bool { ok, _ := h.get(); return ok })

	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	key := func(v string) tradeunit.MerchantKey {
		return tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: v}
	}
	entry := func(v string, state tradeunit.EntryState) *tradeunit.DirectoryEntry {
		e := &tradeunit.DirectoryEntry{Key: key(v), State: state, Attempt: tradeunit.Attempt{Unit: 1, ID: 7},
			Fingerprint: "f", Version: 1, Created: now, Updated: now}
		if state == tradeunit.EntryCommitted {
			e.RecordNo = "12026120200000100000000000000001"
		}
		return e
	}
	for _, r := range shard.Put(ctx, []*tradeunit.DirectoryEntry{entry("committed-1", tradeunit.EntryCommitted), entry("pending-1", tradeunit.EntryPending)}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if e, err := shard.Entry(ctx, key("pending-1")); err != nil || e.State != tradeunit.EntryPending {
		t.Fatalf("pending entry: %+v, %v", e, err)
	}

	root(t, set.Instances[0], "SET GLOBAL read_only = ON")
	if e, err := shard.Entry(ctx, key("committed-1")); err != nil || e.State != tradeunit.EntryCommitted {
		t.Errorf("committed entry on a fenced primary: %+v, %v; want it", e, err)
	}
	for _, v := range []string{"pending-1", "absent-1"} {
		if _, err := shard.Entry(ctx, key(v)); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
			t.Errorf("%s on a fenced primary: %v, want UNIT_UNAVAILABLE", v, err)
		}
	}
	eventually(t, 5*time.Second, "shard not serving on a fenced primary", func() bool { ok, _ := h.get(); return !ok })
	if r := shard.Put(ctx, []*tradeunit.DirectoryEntry{entry("absent-1", tradeunit.EntryPending)}); !tradeunit.IsCode(r[0].Err, tradeunit.CodeUnitUnavailable) {
		t.Errorf("put on a fenced primary: %v, want UNIT_UNAVAILABLE", r[0].Err)
	}
	root(t, set.Instances[0], "SET GLOBAL read_only = OFF")
	eventually(t, 5*time.Second, "shard serving again", func() bool { ok, _ := h.get(); return ok })
	if _, err := shard.Entry(ctx, key("absent-1")); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Errorf("absent entry: %v, want RESOURCE_NOT_EXISTS", err)
	}

	// The primary gone: a committed entry is still read, from a replica;
	// one a replica holds pending, or not at all, cannot be told.
	if err := set.Instances[0].Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a committed entry read from a replica", func() bool {
		e, err := shard.Entry(ctx, key("committed-1"))
		return err == nil && e.State == tradeunit.EntryCommitted
	})
	for _, v := range []string{"pending-1", "absent-1"} {
		if _, err := shard.Entry(ctx, key(v)); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
			t.Errorf("%s without a primary: %v, want UNIT_UNAVAILABLE", v, err)
		}
	}
}
