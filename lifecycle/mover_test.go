package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/lifecycle"
	"tradeunit/routing"
	"tradeunit/rpc"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// moveSetup is one warm SQLite unit with orders, in a routing table file
// and its topology, and the DSN of an empty cold storage.
type moveSetup struct {
	routes   *routing.TableFile
	top      *routing.TopologyFile
	old, to  dsn.DSN
	orders   []string
	services *unit.Service
}

func newMoveSetup(t *testing.T, temperature routing.Temperature, orders int) *moveSetup {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := &moveSetup{old: dsn.MustParse("sqlite:" + filepath.Join(dir, "unit-1.db")), to: dsn.MustParse("sqlite:" + filepath.Join(dir, "cold-1.db"))}
	store, err := sqlstore.Open(ctx, s.old, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := unit.New(unit.DefaultConfig(1), store)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for i := range orders {
		o, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: "1900000001", OutTradeNo: fmt.Sprintf("move-%d", i),
			Description: "move", Amount: tradeunit.Amount{Total: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: "1900000001", OrderNo: o.OrderNo, PaymentID: "p-" + o.OrderNo}); err != nil {
				t.Fatal(err)
			}
		}
		s.orders = append(s.orders, o.OrderNo)
	}
	path := filepath.Join(dir, "routes.json")
	// No logic services: the switch is confirmed at once (the e2e tests
	// confirm it with real ones).
	table := &routing.Table{Revision: 1, Units: []routing.Unit{{ID: 1, Temperature: temperature}}}
	top := &routing.Topology{Revision: 1}
	top.Set(1, routing.Storage{Primary: s.old})
	if err := routing.WriteFile(path, table); err != nil {
		t.Fatal(err)
	}
	if err := routing.WriteTopologyFile(routing.TopologyPath(path), top); err != nil {
		t.Fatal(err)
	}
	if s.routes, err = routing.OpenFile(path, routing.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.routes.Close() })
	if s.top, err = routing.OpenTopologyFile(routing.TopologyPath(path), routing.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.top.Close() })
	return s
}

func (s *moveSetup) mover(t *testing.T, cfg lifecycle.Config, after func(routing.Temperature)) *lifecycle.Mover {
	t.Helper()
	pool := rpc.NewPool()
	t.Cleanup(func() { pool.Close() })
	m, err := lifecycle.NewMover(cfg, lifecycle.Deps{Routes: s.routes, Topology: s.top, Dialer: pool,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AfterStep: after})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *moveSetup) temperature() routing.Temperature {
	u, _ := s.routes.Current().Unit(1)
	return u.Temperature
}

func size(t *testing.T, d dsn.DSN) sqlstore.StoreSize {
	t.Helper()
	st, err := sqlstore.OpenReadOnly(context.Background(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sz, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sz
}

// sameRows checks that the copy holds the rows of every table the old
// storage held, plus the switch's marker: one probe order and its event.
func sameRows(t *testing.T, before, after sqlstore.StoreSize) {
	t.Helper()
	for i, tb := range before.Tables {
		want := tb.Rows
		if tb.Name == "orders" || tb.Name == "order_events" {
			want++
		}
		if got := after.Tables[i].Rows; got != want {
			t.Fatalf("%s: %d rows in the copy, want %d (%d before, and the marker)", tb.Name, got, want, tb.Rows)
		}
	}
}

// TestMoveToRetired: a warm unit goes through every step to retired; the
// cold copy holds every order as it was, the old storage none, and the
// topology and table record each step.
func TestMoveToRetired(t *testing.T) {
	s := newMoveSetup(t, routing.Warm, 120)
	ctx := context.Background()
	before := size(t, s.old)
	cfg := lifecycle.DefaultConfig()
	cfg.RangeRows, cfg.Retire = 16, true
	var steps []routing.Temperature
	r, err := s.mover(t, cfg, func(done routing.Temperature) { steps = append(steps, done) }).Move(ctx, 1, s.to)
	if err != nil {
		t.Fatal(err)
	}
	want := []routing.Temperature{routing.Warm, routing.Copying, routing.Freezing, routing.Verifying, routing.Cold}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	if s.temperature() != routing.Retired {
		t.Fatalf("unit is %s, want retired", s.temperature())
	}
	st, _ := s.top.Current().Unit(1)
	if st.Primary != s.to || !st.Cold || st.Previous != nil || st.ColdCopy != (dsn.DSN{}) {
		t.Fatalf("topology entry %+v", st)
	}
	// Every row is copied but the unit's identity, which the first step
	// writes to claim the copy.
	if r.FreezeWindow <= 0 || r.Copied.RowsCopied != before.Rows-1 || r.Deleted != before.Rows {
		t.Fatalf("report %+v: want a freeze window, %d rows copied and %d deleted", r, before.Rows-1, before.Rows)
	}
	sameRows(t, before, size(t, s.to))
	if n := size(t, s.old).Rows; n != 0 {
		t.Fatalf("the old storage keeps %d rows", n)
	}
	cold, err := sqlstore.OpenReadOnly(ctx, s.to, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	for i, no := range s.orders {
		o, err := cold.Order(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		if paid := i%2 == 0; paid != o.State.Paid() {
			t.Fatalf("order %s is %s in the copy", no, o.State)
		}
	}
}

// TestMoveRefusesHot: a hot unit is not moved, and nothing is written.
func TestMoveRefusesHot(t *testing.T) {
	s := newMoveSetup(t, routing.Hot, 3)
	_, err := s.mover(t, lifecycle.DefaultConfig(), nil).Move(context.Background(), 1, s.to)
	if !tradeunit.IsCode(err, tradeunit.CodeInvalidRequest) {
		t.Fatalf("move of a hot unit: %v, want INVALID_REQUEST", err)
	}
	if st, _ := s.top.Current().Unit(1); st.ColdCopy != (dsn.DSN{}) || s.temperature() != routing.Hot {
		t.Fatalf("a refused move changed the unit: %+v, %s", st, s.temperature())
	}
}

// TestMoveResumesAfterEveryStep stops the mover after each step in turn
// (its context ends, as a killed process's work does) and resumes it with
// a new one: the move completes with the copy equal to the old data.
func TestMoveResumesAfterEveryStep(t *testing.T) {
	for _, stop := range []routing.Temperature{routing.Warm, routing.Copying, routing.Freezing, routing.Verifying, routing.Cold} {
		t.Run(string(stop), func(t *testing.T) {
			s := newMoveSetup(t, routing.Warm, 40)
			before := size(t, s.old)
			cfg := lifecycle.DefaultConfig()
			cfg.RangeRows, cfg.Retire = 8, true
			ctx, cancel := context.WithCancel(context.Background())
			_, err := s.mover(t, cfg, func(done routing.Temperature) {
				if done == stop {
					cancel()
				}
			}).Move(ctx, 1, s.to)
			if stop != routing.Cold && !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped after %s: %v, want the context's end", stop, err)
			}
			if _, err := s.mover(t, cfg, nil).Move(context.Background(), 1, dsn.DSN{}); err != nil {
				t.Fatalf("resume after %s: %v", stop, err)
			}
			if s.temperature() != routing.Retired {
				t.Fatalf("unit is %s after the resume", s.temperature())
			}
			sameRows(t, before, size(t, s.to))
		})
	}
}

// TestMoveAbortAndUndo: a move stopped before the switch is aborted (the
// old storage takes changes again); a cold unit is moved back, with the
// changes the cold copy took.
func TestMoveAbortAndUndo(t *testing.T) {
	ctx := context.Background()
	s := newMoveSetup(t, routing.Warm, 10)
	cfg := lifecycle.DefaultConfig()
	stopCtx, cancel := context.WithCancel(ctx)
	s.mover(t, cfg, func(done routing.Temperature) {
		if done == routing.Copying {
			cancel() // frozen next
		}
	}).Move(stopCtx, 1, s.to)
	m := s.mover(t, cfg, nil)
	if err := m.Abort(ctx, 1); err != nil {
		t.Fatal(err)
	}
	old, err := sqlstore.Open(ctx, s.old, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if frozen, _, err := old.Frozen(ctx); err != nil || frozen {
		t.Fatalf("old storage frozen %v (%v) after the abort", frozen, err)
	}
	if st, _ := s.top.Current().Unit(1); st.ColdCopy != (dsn.DSN{}) || s.temperature() != routing.Warm {
		t.Fatalf("after the abort: %+v, %s", st, s.temperature())
	}

	// Cold, then a change on the cold copy, then undo.
	if _, err := m.Move(ctx, 1, s.to); err != nil {
		t.Fatal(err)
	}
	cold, err := sqlstore.Open(ctx, s.to, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	if _, err := cold.PayOrder(ctx, "1900000001", s.orders[1], "paid-on-cold", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.Abort(ctx, 1); !tradeunit.IsCode(err, tradeunit.CodeInvalidRequest) {
		t.Fatalf("abort of a cold unit: %v, want INVALID_REQUEST", err)
	}
	if err := m.Undo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.top.Current().Unit(1); st.Primary != s.old || st.Cold || st.Previous != nil || s.temperature() != routing.Warm {
		t.Fatalf("after the undo: %+v, %s", st, s.temperature())
	}
	o, err := old.Order(ctx, s.orders[1])
	if err != nil || o.PaymentID != "paid-on-cold" {
		t.Fatalf("order paid on the cold copy, after the undo: %+v, %v", o, err)
	}
	if _, err := old.PayOrder(ctx, "1900000001", s.orders[3], "paid-after-undo", time.Now()); err != nil {
		t.Fatalf("the old storage takes no change after the undo: %v", err)
	}
}
