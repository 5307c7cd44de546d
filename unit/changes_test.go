package unit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/orderno"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// gatedStore holds every ChangeOrders until release is closed, and tells
// when the first has come, so that a test can pile changes up behind it
// into one batch.
type gatedStore struct {
	tradeunit.Store
	entered, release chan struct{}
	once             sync.Once
	returned         atomic.Int32 // ChangeOrders calls that returned
}

func (g *gatedStore) ChangeOrders(ctx context.Context, changes []tradeunit.OrderChange) []tradeunit.ChangeResult {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	defer g.returned.Add(1)
	return g.Store.ChangeOrders(ctx, changes)
}

// TestChangesShareOneBatch: pays and closes that arrive while a batch is
// being written are made in the next one, in one storage transaction, each
// answered as the single-row path would answer it after the ones before:
// a repeat as a repeat, a refusal only to its own caller. No caller is
// answered before its batch's transaction returned, and every change
// answered as made is read at once by another handle.
func TestChangesShareOneBatch(t *testing.T) {
	ctx := context.Background()
	d := dsn.MustParse("sqlite:" + filepath.Join(t.TempDir(), "unit.db"))
	store, err := sqlstore.Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reader, err := sqlstore.Open(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	gated := &gatedStore{Store: store, entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := unit.New(unit.DefaultConfig(1), gated)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	order := func(out string) *tradeunit.Order {
		o, err := svc.CreateOrder(ctx, req("change-"+out, 100))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	gate, a, b, other, last := order("gate"), order("a"), order("b"), order("other"), order("last")
	missing, err := orderno.New(1, time.Now(), 999999)
	if err != nil {
		t.Fatal(err)
	}
	pay := func(o *tradeunit.Order, mchid, payment string) func() (*tradeunit.Order, error) {
		return func() (*tradeunit.Order, error) {
			return svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: mchid, OrderNo: o.OrderNo, PaymentID: payment})
		}
	}
	closeOrder := func(o *tradeunit.Order) func() (*tradeunit.Order, error) {
		return func() (*tradeunit.Order, error) { return svc.CloseOrder(ctx, o.Mchid, o.OrderNo) }
	}
	const mch, otherMch = "1900000001", "1900000002"
	tests := []struct {
		name    string
		call    func() (*tradeunit.Order, error)
		batched bool // refused before it reaches a batch if not
		code    tradeunit.Code
		state   tradeunit.TradeState
	}{
		{"pay", pay(a, mch, "pay-a"), true, "", tradeunit.StateSuccess},
		{"the same pay again", pay(a, mch, "pay-a"), true, "", tradeunit.StateSuccess},
		{"another payment of the paid order", pay(a, mch, "pay-x"), true, tradeunit.CodeOrderPaid, ""},
		{"close of the paid order", closeOrder(a), true, tradeunit.CodeOrderPaid, ""},
		{"close", closeOrder(b), true, "", tradeunit.StateClosed},
		{"pay of the closed order", pay(b, mch, "pay-b"), true, tradeunit.CodeOrderClosed, ""},
		{"the same close again", closeOrder(b), true, "", tradeunit.StateClosed},
		{"another merchant's order", pay(other, otherMch, "pay-o"), true, tradeunit.CodeNotFound, ""},
		{"no such order", pay(&tradeunit.Order{OrderNo: missing.String()}, mch, "pay-m"), true, tradeunit.CodeNotFound, ""},
		{"malformed order number", pay(&tradeunit.Order{OrderNo: "nope"}, mch, "pay-n"), false, tradeunit.CodeParamError, ""},
		{"pay after the refusals", pay(last, mch, "pay-last"), true, "", tradeunit.StateSuccess},
	}

	gateDone := make(chan error, 1)
	go func() { _, err := pay(gate, mch, "pay-gate")(); gateDone <- err }()
	<-gated.entered
	type answer struct {
		o   *tradeunit.Order
		err error
	}
	answers := make([]chan answer, len(tests))
	queued := 0
	for i, tt := range tests {
		answers[i] = make(chan answer, 1)
		go func() {
			o, err := tt.call()
			if tt.batched && gated.returned.Load() < 2 {
				t.Errorf("%s: answered before its batch's transaction returned", tt.name)
			}
			if err == nil {
				// Answered as made: committed, so another handle reads it.
				if got, rerr := reader.Order(ctx, o.OrderNo); rerr != nil || got.State != o.State {
					t.Errorf("%s: answered %s, another handle reads %+v, %v", tt.name, o.State, got, rerr)
				}
			}
			answers[i] <- answer{o, err}
		}()
		if !tt.batched {
			continue
		}
		// Each change joins the waiting batch before the next is sent,
		// so that the batch holds them in the table's order.
		queued++
		for svc.ChangeStats().Pending < queued {
			time.Sleep(time.Millisecond)
		}
	}
	close(gated.release)
	if err := <-gateDone; err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		ans := <-answers[i]
		if got := tradeunit.ErrorCode(ans.err); got != tt.code {
			t.Errorf("%s: error %v, want code %q", tt.name, ans.err, tt.code)
			continue
		}
		if tt.code == "" && ans.o.State != tt.state {
			t.Errorf("%s: got state %s, want %s", tt.name, ans.o.State, tt.state)
		}
	}
	if st := svc.ChangeStats(); st.Batches != 2 || st.Items != uint64(1+queued) {
		t.Errorf("%d changes in %d transactions, want the gate's alone and the %d others in one", st.Items, st.Batches, queued)
	}
}

// TestChangeBatchOff: with the group commit of changes off, every pay is a
// transaction of its own, on its caller's goroutine; with it on,
// concurrent pays share transactions. Either way each pay of an order is
// answered once as made and its repeats as repeats.
func TestChangeBatchOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch-off=%v", off), func(t *testing.T) {
			ctx := context.Background()
			cfg := unit.DefaultConfig(1)
			cfg.ChangeBatch.Disabled = off
			store := openStore(t)
			svc := serviceOn(t, store, cfg)
			const orders, paysPerOrder = 50, 3
			nos := make([]string, orders)
			for i := range nos {
				o, err := svc.CreateOrder(ctx, req(fmt.Sprintf("batch-off-%d", i), 100))
				if err != nil {
					t.Fatal(err)
				}
				nos[i] = o.OrderNo
			}
			var wg sync.WaitGroup
			for i := range orders * paysPerOrder {
				wg.Go(func() {
					o, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: "1900000001", OrderNo: nos[i%orders], PaymentID: "pay-" + nos[i%orders]})
					if err != nil || o.State != tradeunit.StateSuccess || o.Version != 2 {
						t.Errorf("pay %d: %+v, %v", i, o, err)
					}
				})
			}
			wg.Wait()
			st := svc.ChangeStats()
			if st.Items != orders*paysPerOrder || (off && st.Batches != st.Items) || (!off && st.Batches >= st.Items) {
				t.Errorf("batch-off=%v: %d pays in %d transactions", off, st.Items, st.Batches)
			}
			t.Logf("%d pays in %d transactions", st.Items, st.Batches)
		})
	}
}

// TestChangeBatchFollowsEachCallersPrimary: a failover between two callers
// of one batch sends each change to the primary its caller found, each in a
// transaction of its own.
func TestChangeBatchFollowsEachCallersPrimary(t *testing.T) {
	ctx := context.Background()
	open := func(name string) *sqlstore.Store {
		s, err := sqlstore.Open(ctx, dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), name)), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	oldPrimary, newPrimary := open("old.db"), open("new.db")
	gated := &gatedStore{Store: oldPrimary, entered: make(chan struct{}), release: make(chan struct{})}
	st := &storage{primary: gated}
	svc, err := unit.NewWithStorage(unit.DefaultConfig(1), st)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	create := func(out string) *tradeunit.Order {
		o, err := svc.CreateOrder(ctx, req(out, 100))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	gate, onOld := create("failover-gate"), create("failover-old")
	st.primary = newPrimary
	onNew := create("failover-new")
	st.primary = gated

	pay := func(o *tradeunit.Order, done chan<- error) {
		_, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: "pay-" + o.OrderNo})
		done <- err
	}
	done := make(chan error, 3)
	go pay(gate, done)
	<-gated.entered // the flusher is held: the next two share a batch
	waitPending := func(n int) {
		for svc.ChangeStats().Pending < n {
			time.Sleep(time.Millisecond)
		}
	}
	go pay(onOld, done)
	waitPending(1)
	st.primary = newPrimary // the failover
	go pay(onNew, done)
	waitPending(2)
	close(gated.release)
	for range 3 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	for _, c := range []struct {
		store tradeunit.Store
		o     *tradeunit.Order
	}{{oldPrimary, onOld}, {newPrimary, onNew}} {
		if got, err := c.store.Order(ctx, c.o.OrderNo); err != nil || got.State != tradeunit.StateSuccess {
			t.Errorf("order %s on its caller's primary: %+v, %v", c.o.OrderNo, got, err)
		}
	}
	if st := svc.ChangeStats(); st.Batches != 2 || st.Items != 3 {
		t.Errorf("%d changes in %d batches, want 3 in 2", st.Items, st.Batches)
	}
}
