package unit

import (
	"context"
	"sync"
	"time"
)

// SequenceAllocator reserves blocks of sequence numbers in a unit's storage.
// tradeunit.Store implements it.
type SequenceAllocator interface {
	AllocateSequence(ctx context.Context, n int64) (first int64, err error)
}

// Sequencer hands out a unit's order sequence numbers from blocks reserved in
// the unit's own storage (segment style): one storage round trip per block,
// none on the request path while the next block is fetched in the background
// before the current one runs out. Blocks never overlap, so replicas of a
// unit and restarts never repeat a number; a restart only skips the rest of
// its blocks.
type Sequencer struct {
	alloc SequenceAllocator
	block int64
	low   int64 // prefetch the next block when this many numbers are left

	mu       sync.Mutex
	cur, end int64 // current block [cur, end)
	next     [2]int64
	hasNext  bool
	inflight *fetch
}

type fetch struct {
	done chan struct{}
	err  error
}

// DefaultSequenceBlock is how many numbers a Sequencer reserves at a time.
const DefaultSequenceBlock = 1000

// NewSequencer returns a Sequencer reserving blocks of the given size
// (at least 1; see Config.Validate).
func NewSequencer(alloc SequenceAllocator, block int64) *Sequencer {
	return &Sequencer{alloc: alloc, block: block, low: max(block/5, 1)}
}

// Next returns the next sequence number.
func (q *Sequencer) Next(ctx context.Context) (uint64, error) {
	q.mu.Lock()
	for {
		if q.cur < q.end {
			v := q.cur
			q.cur++
			if q.end-q.cur <= q.low && !q.hasNext && q.inflight == nil {
				q.startFetch()
			}
			q.mu.Unlock()
			return uint64(v), nil
		}
		if q.hasNext {
			q.cur, q.end, q.hasNext = q.next[0], q.next[1], false
			continue
		}
		if q.inflight == nil {
			q.startFetch()
		}
		f := q.inflight
		q.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		q.mu.Lock()
		if f.err != nil && !q.hasNext && q.cur >= q.end {
			q.mu.Unlock()
			return 0, f.err
		}
	}
}

// startFetch reserves the next block in the background; q.mu is held.
func (q *Sequencer) startFetch() {
	f := &fetch{done: make(chan struct{})}
	q.inflight = f
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		first, err := q.alloc.AllocateSequence(ctx, q.block)
		cancel()
		q.mu.Lock()
		if err == nil {
			q.next, q.hasNext = [2]int64{first, first + q.block}, true
		}
		f.err = err
		q.inflight = nil
		q.mu.Unlock()
		close(f.done)
	}()
}
