package unit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"tradeunit"
	"tradeunit/unit"
)

// TestConcurrentRefundsShareTransactions: concurrent refunds of one order,
// more than its total allows and each number asked twice, refund exactly
// the total, each number once, every repeat answered with its number's
// refund; with the group commit on they share transactions, off each is
// its own.
func TestConcurrentRefundsShareTransactions(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch-off=%v", off), func(t *testing.T) {
			ctx := context.Background()
			cfg := unit.DefaultConfig(1)
			cfg.ChangeBatch.Disabled = off
			store := openStore(t)
			svc := serviceOn(t, store, cfg)
			o, err := svc.CreateOrder(ctx, req("refund-batch", 100))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.PayOrder(ctx, tradeunit.PayOrderRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, PaymentID: "pay-refunds"}); err != nil {
				t.Fatal(err)
			}
			const numbers, asks, each = 15, 2, 10 // 15 refunds of 10 asked for a total of 100
			var mu sync.Mutex
			ids := map[string]map[string]bool{} // refund number → the refund ids it was answered with
			var wg sync.WaitGroup
			for i := range numbers * asks {
				wg.Go(func() {
					no := fmt.Sprintf("refund-%02d", i%numbers)
					r, err := svc.CreateRefund(ctx, tradeunit.CreateRefundRequest{Mchid: o.Mchid, OrderNo: o.OrderNo, OutRefundNo: no,
						Amount: tradeunit.RefundAmount{Refund: each}})
					if tradeunit.IsCode(err, tradeunit.CodeNotEnough) {
						return
					}
					if err != nil {
						t.Errorf("refund %s: %v", no, err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if ids[no] == nil {
						ids[no] = map[string]bool{}
					}
					ids[no][r.RefundID] = true
				})
			}
			wg.Wait()
			if len(ids) != 100/each {
				t.Errorf("%d refund numbers were refunded, want %d", len(ids), 100/each)
			}
			for no, got := range ids {
				if len(got) != 1 {
					t.Errorf("refund %s was answered with %d refunds: %v", no, len(got), got)
				}
			}
			if stored, err := store.Order(ctx, o.OrderNo); err != nil || stored.Refunded != 100 {
				t.Errorf("order: %+v, %v; want 100 refunded", stored, err)
			}
			st := svc.RefundStats()
			if st.Items != numbers*asks || (off && st.Batches != st.Items) || (!off && st.Batches >= st.Items) {
				t.Errorf("batch-off=%v: %d refunds in %d transactions", off, st.Items, st.Batches)
			}
			t.Logf("%d refunds in %d transactions", st.Items, st.Batches)
		})
	}
}
