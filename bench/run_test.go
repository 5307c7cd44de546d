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

// slowTarget is memTarget whose creates take a millisecond and fail when
// their context ends first.
type slowTarget struct{ *memTarget }

func (t slowTarget) Create(ctx context.Context, out string, total int64) (string, int, error) {
	select {
	case <-time.After(time.Millisecond):
		return t.memTarget.Create(ctx, out, total)
	case <-ctx.Done():
		return "", 1, &tradeunit.Error{Code: codeTransport, Message: "request ended", Err: ctx.Err()}
	}
}

// TestRunEndIsNoError: requests cut off by the end of the run are not the
// system's errors, though a request's context can end before the run's.
func TestRunEndIsNoError(t *testing.T) {
	for range 20 {
		res, err := Run(context.Background(), Config{Target: slowTarget{newMemTarget()}, Concurrency: 8, Duration: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 || res.Creates == 0 {
			t.Fatalf("a run of %d creates counted %d errors (%v), want none", res.Creates, res.Errors, res.ErrorsByCode)
		}
	}
}
