package unit_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// coldStorage is one store whose unit the test declares cold or not, as a
// storage following the topology reports it.
type coldStorage struct {
	tradeunit.Storage
	mu   sync.Mutex
	cold bool
}

func (c *coldStorage) Cold() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.cold }

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{now: t} }
func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.BindUnit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	return s
}

// serviceOn returns a logic service of cfg over s, closed when the test
// ends.
func serviceOn(t *testing.T, s tradeunit.Store, cfg unit.Config) *unit.Service {
	t.Helper()
	svc, err := unit.New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// TestColdPolicy: every call on an order of a cold unit either succeeds or
// gets its documented code: reads always; pay and close only within
// UpdateWithin of the order's creation (ORDER_ARCHIVED after); refunds
// within RefundWindow of the payment (REFUND_PERIOD_EXPIRED after), cold
// or not.
func TestColdPolicy(t *testing.T) {
	ctx := context.Background()
	const mchid = "1900000001"
	start := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		cold  bool
		age   time.Duration // of the orders when the calls are made
		pay   tradeunit.Code
		close tradeunit.Code
		// refund of an order paid at creation
		refund tradeunit.Code
	}{
		{"hot, old orders", false, 30 * 24 * time.Hour, "", "", ""},
		{"cold, young orders", true, time.Hour, "", "", ""},
		{"cold, orders past update-within", true, 48 * time.Hour, tradeunit.CodeOrderArchived, tradeunit.CodeOrderArchived, ""},
		{"cold, past the refund window", true, 400 * 24 * time.Hour, tradeunit.CodeOrderArchived, tradeunit.CodeOrderArchived, tradeunit.CodeRefundExpired},
		{"hot, past the refund window", false, 400 * 24 * time.Hour, "", "", tradeunit.CodeRefundExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(start)
			storage := &coldStorage{Storage: tradeunit.FixedStorage(openStore(t))}
			cfg := unit.DefaultConfig(1)
			cfg.Now = clk.Now
			svc, err := unit.NewWithStorage(cfg, storage)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			create := func(out string) *tradeunit.Order {
				o, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mchid, OutTradeNo: out, Description: "cold",
					Amount: tradeunit.Amount{Total: 100}})
				if err != nil {
					t.Fatal(err)
				}
				return o
			}
			toPay, toClose, paid := create("cold-pay"), create("cold-close"), create("cold-refund")
			if _, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: paid.OrderNo, PaymentID: "p"}); err != nil {
				t.Fatal(err)
			}
			clk.add(tt.age)
			storage.mu.Lock()
			storage.cold = tt.cold
			storage.mu.Unlock()

			check := func(what string, err error, want tradeunit.Code) {
				t.Helper()
				if want == "" && err != nil || want != "" && !tradeunit.IsCode(err, want) {
					t.Errorf("%s: %v, want %q", what, err, want)
				}
				if err != nil && tradeunit.ErrorMessage(err) == "" {
					t.Errorf("%s: %v has no message", what, err)
				}
			}
			_, err = svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: toPay.OrderNo, PaymentID: "p2"})
			check("pay", err, tt.pay)
			_, err = svc.CloseOrder(ctx, mchid, toClose.OrderNo)
			check("close", err, tt.close)
			_, err = svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: mchid, OrderNo: paid.OrderNo, OutRefundNo: "cold-r1",
				Amount: tradeunit.RefundAmount{Refund: 10}})
			check("refund", err, tt.refund)
			for _, o := range []*tradeunit.Order{toPay, toClose, paid} {
				_, err := svc.Order(ctx, mchid, o.OrderNo)
				check("read "+o.OutTradeNo, err, "")
			}
		})
	}
}

// TestChangesWaitForTheFreeze: a change made while the storage is frozen
// waits and is applied once it thaws (here: unfrozen, as the switch to the
// cold copy ends a real freeze), within FreezeWait; one that would wait
// longer gets UNIT_UNAVAILABLE, with nothing written.
func TestChangesWaitForTheFreeze(t *testing.T) {
	ctx := context.Background()
	const mchid = "1900000001"
	store := openStore(t)
	cfg := unit.DefaultConfig(1)
	cfg.FreezeWait = 300 * time.Millisecond
	svc, err := unit.NewWithStorage(cfg, tradeunit.FixedStorage(store))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	a, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mchid, OutTradeNo: "freeze-a", Description: "d", Amount: tradeunit.Amount{Total: 100}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateOrder(ctx, tradeunit.CreateOrderRequest{Mchid: mchid, OutTradeNo: "freeze-b", Description: "d", Amount: tradeunit.Amount{Total: 100}})
	if err != nil {
		t.Fatal(err)
	}

	if err := store.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: a.OrderNo, PaymentID: "p"})
	if !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) || !errors.Is(err, tradeunit.ErrStorageFrozen) {
		t.Fatalf("pay through a freeze longer than the wait: %v, want UNIT_UNAVAILABLE (frozen)", err)
	}
	if waited := time.Since(start); waited < cfg.FreezeWait/2 || waited > 3*cfg.FreezeWait {
		t.Fatalf("the pay waited %v, want about the %v freeze wait", waited, cfg.FreezeWait)
	}
	if o, _ := store.Order(ctx, a.OrderNo); o.State != tradeunit.StateNotPay {
		t.Fatalf("a refused pay wrote: %s", o.State)
	}

	done := make(chan error, 1)
	go func() {
		_, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: b.OrderNo, PaymentID: "p"})
		done <- err
	}()
	// While frozen the pay waits (its freeze wait is 300 ms).
	select {
	case err := <-done:
		t.Fatalf("a pay returned while the storage was frozen: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := store.Unfreeze(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a pay waiting for the freeze: %v, want it applied once unfrozen", err)
	}
	if o, _ := store.Order(ctx, b.OrderNo); o.State != tradeunit.StateSuccess {
		t.Fatalf("the waiting pay left the order %s", o.State)
	}
}
