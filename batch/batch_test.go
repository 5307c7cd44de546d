package batch_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/batch"
)

// result is what the test functions return for an item: the item doubled,
// or the item's own error.
type result struct {
	v   int
	err error
}

// double is a batch function that records each batch it ran.
type double struct {
	mu      sync.Mutex
	batches [][]int
	// hold, when set, is waited on inside every call (the test releases it).
	hold chan struct{}
	// entered is signaled when a call starts (if set).
	entered chan []int
	// returned is set once a call is about to return.
	returned atomic.Int64
}

func (d *double) fn(_ context.Context, items []int) []result {
	d.mu.Lock()
	d.batches = append(d.batches, append([]int(nil), items...))
	d.mu.Unlock()
	if d.entered != nil {
		d.entered <- append([]int(nil), items...)
	}
	if d.hold != nil {
		<-d.hold
	}
	out := make([]result, len(items))
	for i, v := range items {
		out[i] = result{v: 2 * v}
		if v < 0 {
			out[i].err = fmt.Errorf("item %d refused", v)
		}
	}
	d.returned.Add(int64(len(items)))
	return out
}

func (d *double) seen() map[int]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[int]int{}
	for _, b := range d.batches {
		for _, v := range b {
			m[v]++
		}
	}
	return m
}

func mustNew(t testing.TB, cfg batch.Config, fn batch.Func[int, result]) *batch.Batcher[int, result] {
	t.Helper()
	b, err := batch.New(cfg, fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// noLeak fails the test if goroutines started during it are still running
// when it ends (polling: a goroutine that was told to end needs a moment).
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: got %d, want at most %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg batch.Config
		ok  bool
	}{
		{batch.DefaultConfig(), true},
		{batch.Config{Flushers: 1, MaxSize: 1}, true},
		{batch.Config{Flushers: 1, MaxSize: 1, Disabled: true}, true},
		{batch.Config{Flushers: 1, MaxSize: 10000, MaxWait: time.Second}, true},
		{batch.Config{}, false},
		{batch.Config{Flushers: 64, MaxSize: 8}, true},
		{batch.Config{Flushers: 0, MaxSize: 8}, false},
		{batch.Config{Flushers: 65, MaxSize: 8}, false},
		{batch.Config{Flushers: 1, MaxSize: -1}, false},
		{batch.Config{Flushers: 1, MaxSize: 10001}, false},
		{batch.Config{Flushers: 1, MaxSize: 8, MaxWait: -time.Microsecond}, false},
		{batch.Config{Flushers: 1, MaxSize: 8, MaxWait: 2 * time.Second}, false},
	}
	for _, tt := range tests {
		before := tt.cfg
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", tt.cfg, err, tt.ok)
		}
		if err != nil && !tradeunit.IsCode(err, tradeunit.CodeParamError) {
			t.Errorf("%+v.Validate() = %v, want PARAM_ERROR", tt.cfg, err)
		}
		if tt.cfg != before {
			t.Errorf("Validate changed the config: %+v, was %+v", tt.cfg, before)
		}
		if _, err := batch.New(tt.cfg, (&double{}).fn); (err == nil) != tt.ok {
			t.Errorf("New(%+v) = %v, want ok %v", tt.cfg, err, tt.ok)
		}
	}
}

// TestBatches: items submitted together share batches of at most MaxSize,
// each caller gets its own result, and one item's failure is its own.
func TestBatches(t *testing.T) {
	tests := []struct {
		name       string
		cfg        batch.Config
		callers    int
		maxBatches int // at most this many batches (0: no bound)
	}{
		{"one caller", batch.Config{Flushers: 1, MaxSize: 8, MaxWait: time.Millisecond}, 1, 1},
		{"fills one batch", batch.Config{Flushers: 1, MaxSize: 32, MaxWait: time.Second}, 32, 1},
		{"splits at MaxSize", batch.Config{Flushers: 1, MaxSize: 4, MaxWait: time.Second}, 32, 8 + 1},
		{"no wait", batch.Config{Flushers: 1, MaxSize: 128}, 50, 0},
		{"MaxSize 1: one item per batch", batch.Config{Flushers: 1, MaxSize: 1, MaxWait: time.Second}, 20, 20},
		{"disabled", batch.Config{Flushers: 1, MaxSize: 128, Disabled: true}, 20, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			d := &double{}
			b := mustNew(t, tt.cfg, d.fn)
			var wg sync.WaitGroup
			for i := range tt.callers {
				v := i + 1
				if i%3 == 1 {
					v = -v // fails alone
				}
				wg.Go(func() {
					r, err := b.Do(context.Background(), v)
					if err != nil {
						t.Errorf("Do(%d): %v", v, err)
						return
					}
					if r.v != 2*v || (r.err != nil) != (v < 0) {
						t.Errorf("Do(%d) = %+v, want %d, failed %v", v, r, 2*v, v < 0)
					}
				})
			}
			wg.Wait()
			b.Close()
			st := b.Stats()
			if st.Items != uint64(tt.callers) {
				t.Errorf("Stats().Items = %d, want %d", st.Items, tt.callers)
			}
			for _, bt := range d.batches {
				if len(bt) > tt.cfg.MaxSize || (tt.cfg.Disabled && len(bt) != 1) {
					t.Errorf("batch of %d items, MaxSize %d", len(bt), tt.cfg.MaxSize)
				}
			}
			if tt.maxBatches > 0 && len(d.batches) > tt.maxBatches {
				t.Errorf("%d batches, want at most %d", len(d.batches), tt.maxBatches)
			}
			if st.Batches != uint64(len(d.batches)) {
				t.Errorf("Stats().Batches = %d, want %d", st.Batches, len(d.batches))
			}
		})
	}
}

// TestMaxWaitBoundsTheWait: a lone item on an idle flusher is flushed
// after MaxWait, not held until MaxSize items come.
func TestMaxWaitBoundsTheWait(t *testing.T) {
	noLeak(t)
	d := &double{}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 100, MaxWait: 20 * time.Millisecond}, d.fn)
	start := time.Now()
	if _, err := b.Do(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 20*time.Millisecond || el > 2*time.Second {
		t.Errorf("a lone item took %v, want MaxWait (20ms) give or take the scheduler", el)
	}
}

// TestNoAnswerBeforeTheBatchReturns: while the function runs, none of its
// batch's callers is answered; once it returns, all are.
func TestNoAnswerBeforeTheBatchReturns(t *testing.T) {
	noLeak(t)
	d := &double{hold: make(chan struct{}), entered: make(chan []int, 10)}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 10, MaxWait: time.Second}, d.fn)
	var answered atomic.Int64
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := b.Do(context.Background(), i); err != nil {
				t.Errorf("Do: %v", err)
			}
			if d.returned.Load() == 0 {
				t.Errorf("Do(%d) answered before the batch function returned", i)
			}
			answered.Add(1)
		})
	}
	got := <-d.entered
	if len(got) != 10 {
		t.Fatalf("first batch has %d items, want 10 (MaxSize)", len(got))
	}
	time.Sleep(20 * time.Millisecond) // a caller answered early would have been by now
	if n := answered.Load(); n != 0 {
		t.Fatalf("%d callers answered while their batch was still running", n)
	}
	close(d.hold)
	wg.Wait()
}

// TestPipelining: while one batch is being flushed, the items that arrive
// are collected into the next, which goes as one batch once the flusher is
// free.
func TestPipelining(t *testing.T) {
	noLeak(t)
	d := &double{hold: make(chan struct{}), entered: make(chan []int, 10)}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 100}, d.fn)
	var wg sync.WaitGroup
	wg.Go(func() { b.Do(context.Background(), 0) })
	<-d.entered // the first batch is in flight and held
	for i := 1; i <= 30; i++ {
		wg.Go(func() { b.Do(context.Background(), i) })
	}
	waitFor(t, "30 items pending", func() bool { return b.Stats().Pending == 30 })
	d.hold <- struct{}{} // release the first batch
	second := <-d.entered
	close(d.hold)
	wg.Wait()
	if len(second) != 30 {
		t.Errorf("the second batch has %d items, want the 30 that arrived during the first flush", len(second))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCancelWhileWaiting: a caller whose context ends before its item was
// handed to the function gets a definite refusal wrapping the context's
// error, and its item is never flushed.
func TestCancelWhileWaiting(t *testing.T) {
	noLeak(t)
	d := &double{hold: make(chan struct{}), entered: make(chan []int, 10)}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 100}, d.fn)
	var wg sync.WaitGroup
	wg.Go(func() { b.Do(context.Background(), 1) })
	<-d.entered // the flusher is busy: the next item waits in the queue
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Do(ctx, 2)
		errc <- err
	}()
	waitFor(t, "the item queued", func() bool { return b.Stats().Pending == 1 })
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) || tradeunit.OutcomeUnknown(err) {
		t.Errorf("Do canceled in the queue: got %v, want UNIT_UNAVAILABLE wrapping context.Canceled, outcome known", err)
	}
	close(d.hold)
	wg.Wait()
	b.Close()
	if n := d.seen()[2]; n != 0 {
		t.Errorf("the withdrawn item was flushed %d times", n)
	}
}

// TestCancelWhileFlushing: a caller whose context ends while its item is in
// a batch being flushed is answered at once, with an error that says the
// outcome is unknown; its item still counts.
func TestCancelWhileFlushing(t *testing.T) {
	noLeak(t)
	d := &double{hold: make(chan struct{}), entered: make(chan []int, 10)}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 100}, d.fn)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Do(ctx, 7)
		errc <- err
	}()
	<-d.entered
	err := <-errc // while the batch is still held
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, tradeunit.ErrNoAnswer) || !tradeunit.OutcomeUnknown(err) {
		t.Errorf("Do whose deadline passed mid-flush: got %v, want an unknown outcome wrapping DeadlineExceeded", err)
	}
	close(d.hold)
	b.Close()
	if n := d.seen()[7]; n != 1 || d.returned.Load() != 1 {
		t.Errorf("the item was flushed %d times, returned %d; want once", n, d.returned.Load())
	}
}

// TestWrongResultCount: a function that returns too few results fails
// every caller of its batch with SYSTEM_ERROR, an unknown outcome.
func TestWrongResultCount(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 4, Disabled: disabled}, func(_ context.Context, items []int) []result {
			return make([]result, len(items)-1)
		})
		_, err := b.Do(context.Background(), 1)
		if !tradeunit.IsCode(err, tradeunit.CodeInternal) || !tradeunit.OutcomeUnknown(err) {
			t.Errorf("disabled=%v: got %v, want SYSTEM_ERROR", disabled, err)
		}
	}
}

// TestCloseDrains: Close answers every item taken before it, refuses every
// one after, and ends the flusher.
func TestCloseDrains(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprint("disabled=", disabled), func(t *testing.T) {
			noLeak(t)
			d := &double{}
			b, err := batch.New(batch.Config{Flushers: 1, MaxSize: 8, MaxWait: 5 * time.Millisecond, Disabled: disabled}, d.fn)
			if err != nil {
				t.Fatal(err)
			}
			var ok, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					r, err := b.Do(context.Background(), i)
					switch {
					case err == nil && r.v == 2*i:
						ok.Add(1)
					case errors.Is(err, batch.ErrClosed) && !tradeunit.OutcomeUnknown(err):
						refused.Add(1)
					default:
						t.Errorf("Do(%d) = %+v, %v", i, r, err)
					}
				})
				if i == 100 {
					wg.Go(func() { b.Close() })
				}
			}
			wg.Wait()
			b.Close()
			if got := int64(len(d.seen())); got != ok.Load() || ok.Load()+refused.Load() != 200 {
				t.Errorf("%d flushed, %d answered, %d refused; want every answered item flushed, every other refused", got, ok.Load(), refused.Load())
			}
			if _, err := b.Do(context.Background(), 1); !errors.Is(err, batch.ErrClosed) {
				t.Errorf("Do after Close: got %v, want ErrClosed", err)
			}
		})
	}
}

// TestRace: many goroutines, each item flushed exactly once and answered
// with its own result; run with -race.
func TestRace(t *testing.T) {
	noLeak(t)
	d := &double{}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 16, MaxWait: 50 * time.Microsecond}, d.fn)
	const goroutines, each = 64, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := range each {
				v := g*each + i
				if i%50 == 49 {
					// Some callers give up at once: their items are
					// either withdrawn or counted, never lost track of.
					c, cancel := context.WithCancel(ctx)
					cancel()
					b.Do(c, -v-1)
					continue
				}
				r, err := b.Do(ctx, v)
				if err != nil || r.v != 2*v {
					t.Errorf("Do(%d) = %+v, %v", v, r, err)
				}
			}
		})
	}
	wg.Wait()
	b.Close()
	for v, n := range d.seen() {
		if n != 1 {
			t.Errorf("item %d flushed %d times", v, n)
		}
	}
	if got := len(d.seen()); got < goroutines*each*49/50 {
		t.Errorf("%d items flushed, want at least %d", got, goroutines*each*49/50)
	}
}

// BenchmarkDo measures the Batcher alone: the cost per item of submitting,
// batching and answering, with a function that does nothing.
func BenchmarkDo(b *testing.B) {
	for _, cfg := range []batch.Config{
		{Flushers: 1, MaxSize: 128},
		{Flushers: 1, MaxSize: 128, MaxWait: 200 * time.Microsecond},
		{Flushers: 4, MaxSize: 128},
		{Flushers: 1, MaxSize: 1},
		{Flushers: 1, MaxSize: 1, Disabled: true},
	} {
		b.Run(fmt.Sprintf("Flushers=%d/MaxSize=%d/MaxWait=%v/Disabled=%v", cfg.Flushers, cfg.MaxSize, cfg.MaxWait, cfg.Disabled), func(b *testing.B) {
			bt, err := batch.New(cfg, func(_ context.Context, items []int) []int { return items })
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close()
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bt.Do(context.Background(), 1)
				}
			})
			st := bt.Stats()
			b.ReportMetric(float64(st.Items)/float64(max(st.Batches, 1)), "items/batch")
		})
	}
}

// TestCloseWaitsForDirectCalls: with batching disabled, Close still waits
// for the calls running on their callers' goroutines.
func TestCloseWaitsForDirectCalls(t *testing.T) {
	noLeak(t)
	d := &double{hold: make(chan struct{}), entered: make(chan []int, 1)}
	b := mustNew(t, batch.Config{Flushers: 1, MaxSize: 1, Disabled: true}, d.fn)
	go b.Do(context.Background(), 1)
	<-d.entered
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a call was still running")
	case <-time.After(20 * time.Millisecond):
	}
	close(d.hold)
	<-closed
}

// TestFlushersRunBatchesInParallel: with Flushers n, up to n batches are in
// flight at once and never more; every item is answered with its own
// result, and Close ends every flusher.
func TestFlushersRunBatchesInParallel(t *testing.T) {
	const flushers, callers = 3, 60
	var inFlight, most atomic.Int32
	release := make(chan struct{})
	b, err := batch.New(batch.Config{Flushers: flushers, MaxSize: 4}, func(_ context.Context, items []int) []int {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		out := make([]int, len(items))
		for i, x := range items {
			out[i] = 2 * x
		}
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			got, err := b.Do(context.Background(), i)
			if err != nil || got != 2*i {
				t.Errorf("Do(%d) = %d, %v; want %d", i, got, err, 2*i)
			}
		})
	}
	// Poll until every flusher holds a batch, then let them all go.
	deadline := time.Now().Add(10 * time.Second)
	for inFlight.Load() < flushers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	b.Close()
	if m := most.Load(); m != flushers {
		t.Fatalf("at most %d batches in flight at once, want %d", m, flushers)
	}
	if st := b.Stats(); st.Items != callers {
		t.Fatalf("stats %+v, want %d items", st, callers)
	}
}
