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
	set, err := localdb.Start(ctx, setConfig(t.TempDir(), 0))
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
	storage, err := replicated.Open(cfg, replicated.Deps{Unit: 1, Topology: topology, Passwords: set.Passwords(),
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

// setConfig is the default configuration of a local set in dir, with n
// instances (0: the default).
func setConfig(dir string, n int) localdb.Config {
	cfg := localdb.DefaultConfig()
	cfg.Dir = dir
	if n > 0 {
		cfg.Instances = n
	}
	return cfg
}
