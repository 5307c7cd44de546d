package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
)

// backends are the dialects lifecycle tests run on; each opens a fresh,
// empty storage.
var backends = []struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}{
	{"SQLite", openSQLite},
	{"MySQL", openMySQL},
}

func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openStore(t, dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")))
}

func openMySQL(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openStore(t, storetest.NewMySQLDatabase(t))
}

func openStore(t *testing.T, d dsn.DSN) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), d, storetest.TestPasswords())
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const lifecycleUnit tradeunit.UnitID = 11

var lifecycleSeq atomic.Uint64

// newOrderAt returns an unsaved order of mchid created at at; its number
// sorts by at.
func newOrderAt(t *testing.T, mchid string, at time.Time, total int64) *tradeunit.Order {
	t.Helper()
	at = at.UTC().Truncate(time.Microsecond)
	n, err := orderno.New(lifecycleUnit, at, lifecycleSeq.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	no := n.String()
	return &tradeunit.Order{OrderNo: no, Mchid: mchid, OutTradeNo: "out-" + no[len(no)-12:],
		Description: "lifecycle", Amount: tradeunit.Amount{Total: total, Currency: "CNY"}, CreateTime: at}
}

func dump(t *testing.T, s *sqlstore.Store) map[string][][]any {
	t.Helper()
	d, err := s.Dump(context.Background())
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return d
}

func wantFrozen(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, tradeunit.ErrStorageFrozen) || !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
		t.Errorf("%s on a frozen storage: got %v, want UNIT_UNAVAILABLE wrapping ErrStorageFrozen", what, err)
	}
}

// TestFreezeRefusesEveryWrite: on a frozen storage every write fails with
// ErrStorageFrozen and changes nothing, reads go on, and Unfreeze lets
// writes through again.
func TestFreezeRefusesEveryWrite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t)
			now := time.Now()
			if err := s.BindUnit(ctx, lifecycleUnit); err != nil {
				t.Fatal(err)
			}
			notPaid, paid := newOrderAt(t, "1900000001", now, 100), newOrderAt(t, "1900000001", now, 100)
			for _, o := range []*tradeunit.Order{notPaid, paid} {
				if _, _, err := s.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.PayOrder(ctx, paid.Mchid, paid.OrderNo, "pay-1", now); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AcquireRelay(ctx, "relay", "h1", time.Minute, now); err != nil {
				t.Fatal(err)
			}
			if frozen, _, err := s.Frozen(ctx); err != nil || frozen {
				t.Fatalf("Frozen before Freeze: got %v, %v; want false, nil", frozen, err)
			}
			before := dump(t, s)
			if err := s.Freeze(ctx); err != nil {
				t.Fatalf("Freeze: %v", err)
			}
			if err := s.Freeze(ctx); err != nil {
				t.Fatalf("second Freeze: %v", err)
			}
			frozen, at, err := s.Frozen(ctx)
			if err != nil || !frozen || at.Before(now.Add(-time.Second)) {
				t.Fatalf("Frozen: got %v at %v, %v; want true since about %v", frozen, at, err, now)
			}

			writes := []struct {
				name string
				fn   func() error
			}{
				{"CreateOrder", func() error { _, _, err := s.CreateOrder(ctx, newOrderAt(t, "1900000001", now, 5)); return err }},
				{"CreateOrders", func() error {
					return s.CreateOrders(ctx, []*tradeunit.Order{newOrderAt(t, "1900000001", now, 5), newOrderAt(t, "1900000001", now, 6)})[1].Err
				}},
				{"PayOrder", func() error { _, err := s.PayOrder(ctx, notPaid.Mchid, notPaid.OrderNo, "pay-2", now); return err }},
				{"CloseOrder", func() error { _, err := s.CloseOrder(ctx, notPaid.Mchid, notPaid.OrderNo, now); return err }},
				{"CreateRefund", func() error {
					_, _, err := s.CreateRefund(ctx, &tradeunit.Refund{Mchid: paid.Mchid, OrderNo: paid.OrderNo, OutRefundNo: "r1",
						Amount: tradeunit.RefundAmount{Refund: 10, Currency: "CNY"}, CreateTime: now})
					return err
				}},
				{"AllocateSequence", func() error { _, err := s.AllocateSequence(ctx, 10); return err }},
				{"SupersedeAttempt", func() error { _, err := s.SupersedeAttempt(ctx, "1900000001", "other", 7); return err }},
				{"CloseSuperseded", func() error {
					_, err := s.CloseSuperseded(ctx, notPaid.Mchid, notPaid.OrderNo, "x", now)
					return err
				}},
				{"AcquireRelay", func() error { _, err := s.AcquireRelay(ctx, "relay", "h1", time.Minute, now); return err }},
				{"SaveRelayCursor", func() error { return s.SaveRelayCursor(ctx, "relay", "h1", 5, now) }},
				{"ReleaseRelay", func() error { return s.ReleaseRelay(ctx, "relay", "h1") }},
				{"DeleteProbeOrders", func() error { _, err := s.DeleteProbeOrders(ctx, now.Add(time.Hour), 10); return err }},
			}
			for _, w := range writes {
				wantFrozen(t, w.name, w.fn())
			}
			// Binding the unit it holds is a read: a logic service opens
			// a frozen cold copy before it thaws.
			if err := s.BindUnit(ctx, lifecycleUnit); err != nil {
				t.Errorf("BindUnit of its own unit on a frozen storage: %v", err)
			}
			if err := s.BindUnit(ctx, lifecycleUnit+1); !tradeunit.IsCode(err, tradeunit.CodeInvalidRequest) {
				t.Errorf("BindUnit of another unit on a frozen storage: %v, want INVALID_REQUEST", err)
			}
			if after := dump(t, s); !reflect.DeepEqual(after, before) {
				t.Errorf("refused writes changed the storage:\n got %v\nwant %v", after, before)
			}
			if got, err := s.Order(ctx, paid.OrderNo); err != nil || got.State != tradeunit.StateSuccess {
				t.Errorf("Order on a frozen storage: got %v, %v; want the paid order", got, err)
			}
			if _, err := s.Events(ctx, 0, 10); err != nil {
				t.Errorf("Events on a frozen storage: %v", err)
			}

			if err := s.Unfreeze(ctx); err != nil {
				t.Fatalf("Unfreeze: %v", err)
			}
			if frozen, _, err := s.Frozen(ctx); err != nil || frozen {
				t.Fatalf("Frozen after Unfreeze: got %v, %v; want false, nil", frozen, err)
			}
			for _, w := range writes {
				if err := w.fn(); errors.Is(err, tradeunit.ErrStorageFrozen) {
					t.Errorf("%s after Unfreeze: %v", w.name, err)
				}
			}
		})
	}
}

// TestFreezeFencesWritesInFlight races creates against Freeze: every create
// that succeeded committed before Freeze returned (it is readable, and the
// row count read when Freeze returns never changes after), and every one
// refused wrote nothing.
func TestFreezeFencesWritesInFlight(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t)
			const writers = 12
			var (
				mu               sync.Mutex
				created, refused []string
				started          atomic.Int64
				wg               sync.WaitGroup
			)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						o := newOrderAt(t, "1900000001", time.Now(), 1)
						_, _, err := s.CreateOrder(ctx, o)
						started.Add(1)
						mu.Lock()
						switch {
						case err == nil:
							created = append(created, o.OrderNo)
						case errors.Is(err, tradeunit.ErrStorageFrozen):
							refused = append(refused, o.OrderNo)
						default:
							t.Errorf("create: %v", err)
						}
						mu.Unlock()
						if err != nil {
							return
						}
					}
				}()
			}
			for started.Load() < 50 {
				time.Sleep(time.Millisecond)
			}
			if err := s.Freeze(ctx); err != nil {
				t.Fatalf("Freeze: %v", err)
			}
			atFreeze := len(dump(t, s)["orders"])
			wg.Wait()
			final := dump(t, s)
			if got := len(final["orders"]); got != atFreeze {
				t.Errorf("orders after Freeze returned: got %d, want %d (the count when it returned)", got, atFreeze)
			}
			if len(created) != atFreeze || len(refused) != writers {
				t.Errorf("got %d created and %d refused, want %d created (stored) and %d refused (one per writer)",
					len(created), len(refused), atFreeze, writers)
			}
			for _, no := range created {
				if _, err := s.Order(ctx, no); err != nil {
					t.Errorf("created order %s: %v", no, err)
				}
			}
			for _, no := range refused {
				if _, err := s.Order(ctx, no); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
					t.Errorf("refused order %s: got %v, want RESOURCE_NOT_EXISTS", no, err)
				}
			}
			if got, want := len(final["order_events"]), atFreeze; got != want {
				t.Errorf("events: got %d, want %d (one per created order)", got, want)
			}
		})
	}
}

// TestFreezeWaitsForWriterInFlight holds a create just past the fence:
// Freeze must not return while it is in flight, the create then commits,
// and Freeze returns after it.
func TestFreezeWaitsForWriterInFlight(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t)
			inside, release := make(chan struct{}), make(chan struct{})
			var once, released sync.Once
			// Before the Store closes (cleanups run last first): Close
			// waits for the held writer.
			t.Cleanup(func() { released.Do(func() { close(release) }) })
			s.SetPassedFence(func(op string) {
				once.Do(func() {
					close(inside)
					<-release
				})
			})
			o := newOrderAt(t, "1900000001", time.Now(), 1)
			createErr := make(chan error, 1)
			go func() { _, _, err := s.CreateOrder(ctx, o); createErr <- err }()
			<-inside
			frozeAt := make(chan error, 1)
			go func() { frozeAt <- s.Freeze(ctx) }()
			// A negative check needs a bound: a Freeze that did not wait
			// returns within a few milliseconds.
			select {
			case err := <-frozeAt:
				t.Fatalf("Freeze returned (%v) while a write that passed the fence was in flight", err)
			case <-time.After(200 * time.Millisecond):
			}
			released.Do(func() { close(release) })
			if err := <-createErr; err != nil {
				t.Fatalf("the create in flight: got %v, want it committed", err)
			}
			if err := <-frozeAt; err != nil {
				t.Fatalf("Freeze: %v", err)
			}
			if _, err := s.Order(ctx, o.OrderNo); err != nil {
				t.Errorf("the create in flight is not readable: %v", err)
			}
			_, _, err := s.CreateOrder(ctx, newOrderAt(t, "1900000001", time.Now(), 1))
			wantFrozen(t, "CreateOrder after Freeze", err)
		})
	}
}
