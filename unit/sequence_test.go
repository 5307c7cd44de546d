package unit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counterAllocator is a SequenceAllocator over a counter, recording calls.
type counterAllocator struct {
	mu    sync.Mutex
	next  int64
	calls atomic.Int32
	fail  atomic.Bool
	delay atomic.Int64 // nanoseconds
}

func (a *counterAllocator) AllocateSequence(_ context.Context, n int64) (int64, error) {
	// The storage's latency, as the test sets it.
	time.Sleep(time.Duration(a.delay.Load()))
	a.calls.Add(1) // counted once the block is ready: the test waits for it
	if a.fail.Load() {
		return 0, errors.New("storage down")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	first := a.next + 1
	a.next += n
	return first, nil
}

func TestSequencerHandsOutEachNumberOnce(t *testing.T) {
	alloc := &counterAllocator{}
	q := NewSequencer(alloc, 10)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				v, err := q.Next(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[v] {
					t.Errorf("%d handed out twice", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 1600 {
		t.Fatalf("got %d numbers, want 1600", len(seen))
	}
}

func TestSequencerPrefetchesBeforeRunningOut(t *testing.T) {
	alloc := &counterAllocator{}
	q := NewSequencer(alloc, 10)
	for i := 0; i < 8; i++ { // 2 left of 10: at or under the low mark
		if _, err := q.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Second)
	for alloc.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("allocator called %d times with 2 numbers left, want the next block fetched (2 calls)", alloc.calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// The prefetched block is used without waiting for storage.
	alloc.delay.Store(int64(3 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		if _, err := q.Next(ctx); err != nil {
			t.Fatalf("number %d after the prefetch: %v", 8+i, err)
		}
	}
}

func TestSequencerReportsStorageFailure(t *testing.T) {
	alloc := &counterAllocator{}
	alloc.fail.Store(true)
	q := NewSequencer(alloc, 10)
	if _, err := q.Next(context.Background()); err == nil {
		t.Fatal("got a number from failing storage")
	}
	alloc.fail.Store(false)
	if v, err := q.Next(context.Background()); err != nil || v != 1 {
		t.Fatalf("after recovery: got %d, %v; want 1", v, err)
	}
}

func BenchmarkSequencerNext(b *testing.B) {
	q := NewSequencer(&counterAllocator{}, DefaultSequenceBlock)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Next(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
