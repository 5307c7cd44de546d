package dirstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/batch"
)

// gate is a DirectoryStore whose Puts wait, inside Put and before they
// write, until the test releases them.
type gate struct {
	tradeunit.DirectoryStore
	entered chan int // the number of entries of each Put that starts
	release chan struct{}
	done    atomic.Int64 // Puts that have returned
}

func newGate(s tradeunit.DirectoryStore) *gate {
	return &gate{DirectoryStore: s, entered: make(chan int, 100), release: make(chan struct{})}
}

func (g *gate) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	g.entered <- len(entries)
	<-g.release
	defer g.done.Add(1)
	return g.DirectoryStore.Put(ctx, entries)
}

// TestBatchedAnswersNoCallerBeforeItsCommit: callers whose batch is being
// written are all still waiting; each one answered finds its entry
// committed in the storage.
func TestBatchedAnswersNoCallerBeforeItsCommit(t *testing.T) {
	s := open(t, sqliteDSN(t))
	g := newGate(s)
	b := batched(t, g, batch.Config{Flushers: 1, MaxSize: 64, MaxWait: 50 * time.Millisecond})
	const callers = 20
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			e := newEntry(1)
			r := b.Put(context.Background(), []*tradeunit.DirectoryEntry{e})[0]
			answered.Add(1)
			if r.Err != nil {
				t.Errorf("Put: %v", r.Err)
				return
			}
			if g.done.Load() == 0 {
				t.Errorf("Put of %s answered before its batch was written", e.Key)
			}
			if _, err := s.Entry(context.Background(), e.Key); err != nil {
				t.Errorf("Put of %s answered, but the entry is not stored: %v", e.Key, err)
			}
		})
	}
	n := <-g.entered
	time.Sleep(20 * time.Millisecond) // a caller answered early would have been by now
	if got := answered.Load(); got != 0 {
		t.Fatalf("%d callers answered while their batch (%d entries) was held inside Put", got, n)
	}
	close(g.release)
	wg.Wait()
}

// TestBatchedFailuresStayTheirOwn: one batch holds valid entries, invalid
// ones, conflicts and two callers racing for one key; each caller gets its
// own outcome, and the valid entries are stored.
func TestBatchedFailuresStayTheirOwn(t *testing.T) {
	ctx := context.Background()
	s := open(t, sqliteDSN(t))
	taken := newEntry(1)
	if r := s.Put(ctx, []*tradeunit.DirectoryEntry{taken})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	g := newGate(s)
	b := batched(t, g, batch.Config{Flushers: 1, MaxSize: 64})
	// A first Put holds the flusher, so that all the others queue into
	// the next batch.
	var wg sync.WaitGroup
	wg.Go(func() { b.Put(ctx, []*tradeunit.DirectoryEntry{newEntry(1)}) })
	<-g.entered

	invalid := newEntry(1)
	invalid.Version = 0
	conflict := newEntry(2)
	conflict.Key = taken.Key
	race1, race2 := newEntry(3), newEntry(4)
	race2.Key = race1.Key
	cases := []struct {
		name    string
		entries []*tradeunit.DirectoryEntry
		check   func(t *testing.T, rs []tradeunit.PutResult)
	}{
		{"valid", []*tradeunit.DirectoryEntry{newEntry(1), newEntry(2)}, func(t *testing.T, rs []tradeunit.PutResult) {
			for _, r := range rs {
				if r.Err != nil {
					t.Errorf("valid: %v", r.Err)
				}
			}
		}},
		{"invalid beside a valid one", []*tradeunit.DirectoryEntry{invalid, newEntry(5)}, func(t *testing.T, rs []tradeunit.PutResult) {
			if !tradeunit.IsCode(rs[0].Err, tradeunit.CodeParamError) || rs[1].Err != nil {
				t.Errorf("invalid: got %v, %v; want PARAM_ERROR, then success", rs[0].Err, rs[1].Err)
			}
		}},
		{"conflict", []*tradeunit.DirectoryEntry{conflict}, func(t *testing.T, rs []tradeunit.PutResult) {
			if !errors.Is(rs[0].Err, tradeunit.ErrVersionConflict) || rs[0].Entry == nil || rs[0].Entry.Attempt != taken.Attempt {
				t.Errorf("conflict: got %+v, %v; want the stored entry", rs[0].Entry, rs[0].Err)
			}
		}},
		{"race 1", []*tradeunit.DirectoryEntry{race1}, nil},
		{"race 2", []*tradeunit.DirectoryEntry{race2}, nil},
	}
	results := make([][]tradeunit.PutResult, len(cases))
	for i, c := range cases {
		wg.Go(func() { results[i] = b.Put(ctx, c.entries) })
	}
	for b.Stats().Pending < len(cases) {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	if n := <-g.entered; n != 7 {
		t.Errorf("the second batch had %d entries, want all 7 of the queued Puts", n)
	}
	for i, c := range cases {
		if c.check != nil {
			c.check(t, results[i])
		}
	}
	// The racers: exactly one of the two wins, the other sees it.
	r1, r2 := results[3][0], results[4][0]
	if (r1.Err == nil) == (r2.Err == nil) {
		t.Fatalf("race: got %v and %v, want exactly one winner", r1.Err, r2.Err)
	}
	loser, winner := r2, r1
	if r1.Err != nil {
		loser, winner = r1, r2
	}
	if !errors.Is(loser.Err, tradeunit.ErrVersionConflict) || loser.Entry.Attempt != winner.Entry.Attempt {
		t.Errorf("race: the loser got %+v, %v; want the winner %+v", loser.Entry, loser.Err, winner.Entry)
	}
	for _, c := range cases[:2] {
		for _, e := range c.entries {
			if e.Version == 0 {
				continue
			}
			if _, err := s.Entry(ctx, e.Key); err != nil {
				t.Errorf("valid entry %s not stored: %v", e.Key, err)
			}
		}
	}
}

// TestBatchedCancellation: a caller that gives up while its entry is being
// written is told the outcome is unknown, and the entry is written; one
// that gives up while queued is refused, and nothing is written.
func TestBatchedCancellation(t *testing.T) {
	ctx := context.Background()
	s := open(t, sqliteDSN(t))
	g := newGate(s)
	b := batched(t, g, batch.Config{Flushers: 1, MaxSize: 64})

	inFlight := newEntry(1)
	c1, cancel1 := context.WithCancel(ctx)
	errc := make(chan error, 2)
	go func() { errc <- b.Put(c1, []*tradeunit.DirectoryEntry{inFlight})[0].Err }()
	<-g.entered
	queued := newEntry(1)
	c2, cancel2 := context.WithCancel(ctx)
	go func() { errc <- b.Put(c2, []*tradeunit.DirectoryEntry{queued})[0].Err }()
	for b.Stats().Pending < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel1()
	if err := <-errc; !tradeunit.OutcomeUnknown(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled while being written: got %v, want an unknown outcome wrapping context.Canceled", err)
	}
	cancel2()
	if err := <-errc; tradeunit.OutcomeUnknown(err) || !errors.Is(err, context.Canceled) ||
		!tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
		t.Errorf("canceled while queued: got %v, want UNIT_UNAVAILABLE, nothing written, wrapping context.Canceled", err)
	}
	close(g.release)
	b.Close()
	if _, err := s.Entry(ctx, inFlight.Key); err != nil {
		t.Errorf("the entry whose caller gave up mid-write is not stored: %v", err)
	}
	if _, err := s.Entry(ctx, queued.Key); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Errorf("the withdrawn entry: got %v, want RESOURCE_NOT_EXISTS", err)
	}
	if r := b.Put(ctx, []*tradeunit.DirectoryEntry{newEntry(1)})[0]; !errors.Is(r.Err, batch.ErrClosed) || tradeunit.OutcomeUnknown(r.Err) {
		t.Errorf("Put after Close: got %v, want a definite refusal", r.Err)
	}
}
