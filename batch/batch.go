// Package batch is group commit: many callers each submit one item and wait
// for its result, and one flusher runs a function once for a whole batch of
// items, so that they share one storage transaction (one sync to disk, one
// round trip) instead of paying one each.
//
// A Batcher has Flushers flushers and so at most that many batches in
// flight; while they are being flushed, the items that arrive are collected
// into the next batch. When a flusher is idle, a batch's first item waits up
// to MaxWait for others (or until MaxSize have come) before it is flushed.
//
// # Cancellation
//
// A caller whose context ends while it waits is answered at once with an
// error that wraps the context's error (errors.Is(err, context.Canceled) or
// DeadlineExceeded), and which of two it is depends on where its item was:
//
//   - Not yet handed to the function: the item is withdrawn and never
//     flushed. The error is a definite refusal, UNIT_UNAVAILABLE with
//     nothing done (tradeunit.Unavailable).
//   - Already in a batch being flushed: the item still counts, its change
//     may be made or not, and the caller will not learn which. The error
//     wraps tradeunit.ErrNoAnswer (tradeunit.NoAnswer), so that
//     tradeunit.OutcomeUnknown reports it: the caller must treat the change
//     as possibly made, like a call whose answer was lost.
//
// The function itself runs with a context of the Batcher's own, which no
// caller's cancellation ends: one caller giving up must not fail the others'
// items. It must bound its own work (storage drivers have timeouts).
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"tradeunit"
)

// Config says how items are batched.
type Config struct {
	// MaxSize is the most items in one batch. 1 flushes every item alone
	// (through the flusher, one at a time).
	MaxSize int
	// MaxWait is how long, when the flusher is idle, a batch's first item
	// waits for more before the batch is flushed. 0 flushes at once; items
	// arriving during a flush still form the next batch.
	MaxWait time.Duration
	// Flushers is how many batches may be in flight at once: 1 for storage
	// that writes one transaction at a time (SQLite), more where
	// transactions commit in parallel (MySQL), so that one batch's round
	// trips do not hold up the next. Idle flushers take items at once, so
	// under light load items go alone.
	Flushers int
	// Disabled turns batching off: each item runs alone on its caller's
	// goroutine, with its caller's context, as if there were no Batcher.
	// For comparison and for storage that gains nothing from batches.
	Disabled bool
}

// DefaultConfig returns the defaults: batches of up to 128 items, flushed
// as soon as the flusher is free (MaxWait 0). Concurrent callers pile up
// during the previous flush anyway, and a wait adds its whole length to
// every call when load is light. A wait is coarse, too: on the 2-vCPU
// machines of MEASURED.md a timer of 50 µs to 1 ms fires after ~1.1 ms
// when the process is otherwise idle. On store/dirstore's BenchmarkPut
// (16 writers, 2026-12-02, interleaved rounds on a loaded host) MaxWait 0
// beat 200 µs and 1 ms on SQLite and on MariaDB alike.
func DefaultConfig() Config { return Config{MaxSize: 128, MaxWait: 0, Flushers: 1} }

// The bounds Validate enforces.
const (
	maxMaxSize  = 10000
	maxMaxWait  = time.Second
	maxFlushers = 64
)

// Validate reports whether c is usable; it changes nothing.
func (c Config) Validate() error {
	if c.MaxSize < 1 || c.MaxSize > maxMaxSize {
		return tradeunit.Errorf(tradeunit.CodeParamError, "batch: MaxSize must be 1 to %d, got %d", maxMaxSize, c.MaxSize)
	}
	if c.Flushers < 1 || c.Flushers > maxFlushers {
		return tradeunit.Errorf(tradeunit.CodeParamError, "batch: Flushers must be 1 to %d, got %d", maxFlushers, c.Flushers)
	}
	if c.MaxWait < 0 || c.MaxWait > maxMaxWait {
		return tradeunit.Errorf(tradeunit.CodeParamError, "batch: MaxWait must be 0 to %v, got %v", maxMaxWait, c.MaxWait)
	}
	return nil
}

// Func does the work of one batch: it returns one result per item, in the
// order of the items. A failure of one item belongs in its result (R holds
// the error), not in the others'. It must not keep items after it returns.
type Func[T, R any] func(ctx context.Context, items []T) []R

// ErrClosed is the cause of a Do after Close: nothing was done.
var ErrClosed = errors.New("batcher closed")

// Stats counts what a Batcher flushed.
type Stats struct {
	Batches uint64 // calls of the function
	Items   uint64 // items in them
	Pending int    // items waiting for a flush now (withdrawn ones included)
}

// Batcher collects items into batches and flushes them. Its methods are
// safe for concurrent use.
type Batcher[T, R any] struct {
	cfg Config
	fn  Func[T, R]
	ctx context.Context // the function's

	mu      sync.Mutex
	pending []*call[T, R]
	closed  bool
	// wake (cap 1) tells the idle flusher that pending is not empty, or
	// that the Batcher is closed; full (cap 1) that pending holds MaxSize
	// items. Both are sent and drained under mu, so no signal is lost.
	wake, full chan struct{}
	done       chan struct{}  // closed when the flushers have ended
	direct     sync.WaitGroup // the calls running on their callers' goroutines (Disabled)

	batches, items atomic.Uint64
}

// The states of a call: its item is waiting, handed to the function, or
// withdrawn by its caller.
const (
	waiting int32 = iota
	flushing
	withdrawn
)

type call[T, R any] struct {
	item   T
	at     time.Time // when it was submitted
	state  atomic.Int32
	result R
	err    error
	done   chan struct{} // closed once result or err is set
}

// New returns a Batcher that flushes with fn; Close it to end its flusher.
func New[T, R any](cfg Config, fn Func[T, R]) (*Batcher[T, R], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Batcher[T, R]{cfg: cfg, fn: fn, ctx: context.Background(),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), done: make(chan struct{})}
	if cfg.Disabled {
		close(b.done)
		return b, nil
	}
	var flushers sync.WaitGroup
	for range cfg.Flushers {
		flushers.Go(b.run)
	}
	go func() { flushers.Wait(); close(b.done) }()
	return b, nil
}

// Do submits item and waits for its result: the one the function returned
// for it, after the function has returned for the whole batch. Its error
// is the Batcher's own, never the item's: ErrClosed after Close, or the
// end of ctx (see the package doc for what each means).
func (b *Batcher[T, R]) Do(ctx context.Context, item T) (R, error) {
	var zero R
	if b.cfg.Disabled {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return zero, tradeunit.Unavailable("batch.Do", "shutting down; nothing was done", ErrClosed)
		}
		b.direct.Add(1)
		b.mu.Unlock()
		defer b.direct.Done()
		if err := ctx.Err(); err != nil {
			return zero, refusedByContext(err)
		}
		b.batches.Add(1)
		b.items.Add(1)
		return b.one(ctx, item)
	}
	c := &call[T, R]{item: item, at: time.Now(), done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return zero, tradeunit.Unavailable("batch.Do", "shutting down; nothing was done", ErrClosed)
	}
	b.pending = append(b.pending, c)
	switch len(b.pending) {
	case 1:
		signal(b.wake)
	case b.cfg.MaxSize:
		signal(b.full)
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.result, c.err
	case <-ctx.Done():
	}
	if c.state.CompareAndSwap(waiting, withdrawn) {
		return zero, refusedByContext(ctx.Err())
	}
	// The item is in a batch being flushed, or its result just came.
	select {
	case <-c.done:
		return c.result, c.err
	default:
	}
	return zero, tradeunit.NoAnswer("batch.Do",
		"the request ended while its change was being written: it may or may not have been made", ctx.Err())
}

func refusedByContext(err error) error {
	return tradeunit.Unavailable("batch.Do", "the request ended before its change was written; nothing was done", err)
}

// one runs a single item on the caller's goroutine (Disabled).
func (b *Batcher[T, R]) one(ctx context.Context, item T) (R, error) {
	results := b.fn(ctx, []T{item})
	if len(results) != 1 {
		var zero R
		return zero, wrongCount(len(results), 1)
	}
	return results[0], nil
}

func wrongCount(got, want int) error {
	return tradeunit.Internal("batch.flush", fmt.Errorf("the batch function returned %d results for %d items", got, want))
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// Close stops taking items, flushes those taken, and returns once the last
// batch has been answered and the flusher has ended (Disabled: once the
// calls running have returned). Do after Close fails
// with ErrClosed. Close may be called more than once.
func (b *Batcher[T, R]) Close() error {
	b.mu.Lock()
	b.closed = true
	signal(b.wake)
	b.mu.Unlock()
	<-b.done
	b.direct.Wait()
	return nil
}

// Stats returns what the Batcher has flushed so far.
func (b *Batcher[T, R]) Stats() Stats {
	b.mu.Lock()
	pending := len(b.pending)
	b.mu.Unlock()
	return Stats{Batches: b.batches.Load(), Items: b.items.Load(), Pending: pending}
}

// run is a flusher.
func (b *Batcher[T, R]) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var (
		batch []*call[T, R]
		items []T
		taken []*call[T, R]
	)
	for {
		b.mu.Lock()
		for len(b.pending) == 0 {
			if b.closed {
				signal(b.wake) // the next flusher sees it too
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
		}
		// The batch's first item waits at most MaxWait in all, the last
		// flush included.
		if wait := time.Until(b.pending[0].at.Add(b.cfg.MaxWait)); wait > 0 && len(b.pending) < b.cfg.MaxSize && !b.closed {
			// Signals sent before now are stale: pending is not full,
			// and not closed.
			drain(b.full)
			drain(b.wake)
			b.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-b.full:
				timer.Stop()
			case <-b.wake: // closed
				timer.Stop()
			case <-timer.C:
			}
			b.mu.Lock()
		}
		n := min(len(b.pending), b.cfg.MaxSize)
		batch = append(batch[:0], b.pending[:n]...)
		rest := copy(b.pending, b.pending[n:])
		clear(b.pending[rest:])
		b.pending = b.pending[:rest]
		if rest > 0 {
			signal(b.wake) // an idle flusher takes the rest
		}
		b.mu.Unlock()
		items, taken = b.flush(batch, items[:0], taken[:0])
		clear(batch)
	}
}

// flush hands the batch's items that are still waiting to the function and
// answers their callers; items and taken are reused buffers.
func (b *Batcher[T, R]) flush(batch []*call[T, R], items []T, taken []*call[T, R]) ([]T, []*call[T, R]) {
	for _, c := range batch {
		if c.state.CompareAndSwap(waiting, flushing) {
			items = append(items, c.item)
			taken = append(taken, c)
		}
	}
	if len(taken) == 0 {
		return items, taken
	}
	results := b.fn(b.ctx, items)
	b.batches.Add(1)
	b.items.Add(uint64(len(items)))
	if len(results) != len(taken) {
		err := wrongCount(len(results), len(taken))
		for _, c := range taken {
			c.err = err
			close(c.done)
		}
	} else {
		for i, c := range taken {
			c.result = results[i]
			close(c.done)
		}
	}
	clear(items)
	clear(taken)
	return items, taken
}
