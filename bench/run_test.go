package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"tradeunit"
)

// memTarget keeps orders in memory; lie makes its lookups by out_trade_no
// answer another order.
type memTarget struct {
	mu     sync.Mutex
	orders map[string]tradeunit.TradeState
	byOut  map[string]string
	n      int
	lie    bool
}

func newMemTarget() *memTarget {
	return &memTarget{orders: map[string]tradeunit.TradeState{}, byOut: map[string]string{}}
}

func (t *memTarget) Create(_ context.Context, out string, _ int64) (string, int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	no := fmt.Sprintf("%020d", t.n)
	t.orders[no], t.byOut[out] = tradeunit.StateNotPay, no
	return no, 1, nil
}

func (t *memTarget) set(no string, s tradeunit.TradeState) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.orders[no] = s
	return nil
}

func (t *memTarget) Pay(_ context.Context, no, _ string) error {
	return t.set(no, tradeunit.StateSuccess)
}
func (t *memTarget) Close(_ context.Context, no string) error {
	return t.set(no, tradeunit.StateClosed)
}
func (t *memTarget) Refund(_ context.Context, no, _ string, _ int64) error {
	return t.set(no, tradeunit.StateRefund)
}

func (t *memTarget) Query(_ context.Context, no string) (tradeunit.TradeState, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.orders[no], 0, nil
}

func (t *memTarget) QueryByOutTradeNo(_ context.Context, out string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lie {
		return "not-" + t.byOut[out], nil
	}
	return t.byOut[out], nil
}

func (t *memTarget) Release() error { return nil }

func TestRunAfterMeasuresOneOperationAlone(t *testing.T) {
	ctx := context.Background()
	target := newMemTarget()
	created, err := Run(ctx, Config{Target: target, Concurrency: 4, Requests: 40})
	if err != nil || created.Creates != 40 {
		t.Fatalf("creates: %d, %v", created.Creates, err)
	}
	// Pays run out after one per order: the run ends long before its
	// duration, and makes no order.
	start := time.Now()
	paid, err := Run(ctx, Config{Target: target, Concurrency: 4, Duration: time.Minute, Mix: Mix{OpPay: 1}, After: created})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the pays took %v: they did not end when the orders ran out", took)
	}
	if paid.Creates != 0 || paid.PerOp[OpPay].Requests != 40 || paid.Errors != 0 {
		t.Errorf("creates %d, pays %d, errors %d; want 0, 40, 0", paid.Creates, paid.PerOp[OpPay].Requests, paid.Errors)
	}
	if target.n != 40 {
		t.Errorf("the target holds %d orders, want 40", target.n)
	}
	if v := paid.Verify(ctx, target); !v.OK() || v.Orders != 40 {
		t.Errorf("verification after the pays: %+v", v)
	}

	looked, err := Run(ctx, Config{Target: target, Concurrency: 2, Requests: 20, Mix: Mix{OpQueryOut: 1}, After: paid})
	if err != nil || looked.PerOp[OpQueryOut].Requests != 20 || looked.Errors != 0 {
		t.Fatalf("lookups by out_trade_no: %+v, %v", looked.PerOp[OpQueryOut], err)
	}
	target.lie = true
	wrong, err := Run(ctx, Config{Target: target, Concurrency: 2, Requests: 5, Mix: Mix{OpQueryOut: 1}, After: paid})
	if err != nil || wrong.PerOp[OpQueryOut].Errors != 5 {
		t.Errorf("lookups answering another order: %d of 5 counted as errors (%v)", wrong.PerOp[OpQueryOut].Errors, err)
	}
}

// lateContext has a deadline whose timer has not fired: Err is still nil.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

func TestRunEnded(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no deadline", context.Background(), false},
		{"deadline ahead", lateContext{context.Background(), time.Now().Add(time.Hour)}, false},
		{"deadline passed, timer not fired", lateContext{context.Background(), time.Now().Add(-time.Millisecond)}, true},
		{"cancelled", cancelled, true},
	}
	for _, tt := range tests {
		if got := runEnded(tt.ctx); got != tt.want {
			t.Errorf("%s: runEnded = %v, want %v", tt.name, got, tt.want)
		}
	}
}
