package unit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/sqlstore"
	"tradeunit/unit"
)

// TestConcurrentCreatesShareTransactions: concurrent creates of a unit are
// committed together (fewer transactions than orders), a repeated key among
// them makes no second order, and no caller is answered before its order
// is committed: another handle on the storage reads it at once. With
// batching off, every create is its own transaction.
func TestConcurrentCreatesShareTransactions(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch-off=%v", off), func(t *testing.T) {
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
			cfg := unit.DefaultConfig(1)
			cfg.Batch.Disabled = off
			svc, err := unit.New(cfg, store)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()

			const creates, keys = 200, 150 // 50 repeat a key another create has
			orderOf := make([]string, creates)
			var wg sync.WaitGroup
			for i := range creates {
				wg.Add(1)
				go func() {
					defer wg.Done()
					o, err := svc.CreateOrder(ctx, req(fmt.Sprintf("batch-%04d", i%keys), 100))
					if err != nil {
						t.Errorf("create %d: %v", i, err)
						return
					}
					if _, err := reader.Order(ctx, o.OrderNo); err != nil {
						t.Errorf("create %d answered %s before it could be read: %v", i, o.OrderNo, err)
					}
					orderOf[i] = o.OrderNo
				}()
			}
			wg.Wait()
			distinct := map[string]bool{}
			for i := range creates {
				distinct[orderOf[i]] = true
				if orderOf[i] != orderOf[i%keys] {
					t.Errorf("key %d: creates %d and %d got %s and %s", i%keys, i%keys, i, orderOf[i%keys], orderOf[i])
				}
			}
			if len(distinct) != keys {
				t.Errorf("%d orders for %d keys", len(distinct), keys)
			}
			st := svc.CreateStats()
			if st.Items != creates || (off && st.Batches != creates) || (!off && st.Batches >= creates) {
				t.Errorf("batch-off=%v: %d creates in %d transactions", off, st.Items, st.Batches)
			}
			t.Logf("%d creates in %d transactions", st.Items, st.Batches)
		})
	}
}

// TestCreateWithoutPrimaryIsUnavailable: a batch goes to the storage's
// primary of the moment; with none (failing over), its creates fail with
// UNIT_UNAVAILABLE, nothing written.
func TestCreateWithoutPrimaryIsUnavailable(t *testing.T) {
	good, err := sqlstore.Open(context.Background(), dsn.MustParse("sqlite:"+filepath.Join(t.TempDir(), "unit.db")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	st := &storage{primary: good}
	svc, err := unit.NewWithStorage(unit.DefaultConfig(1), st)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.CreateOrder(context.Background(), req("batch-first", 100)); err != nil {
		t.Fatal(err) // and the sequencer holds a block now
	}
	st.primary = nil
	if _, err := svc.CreateOrder(context.Background(), req("batch-none", 100)); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
		t.Fatalf("got %v, want UNIT_UNAVAILABLE", err)
	}
	if _, err := good.OrderByOutTradeNo(context.Background(), "1900000001", "batch-none"); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("the refused create was written: %v", err)
	}
}
