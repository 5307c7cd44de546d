package dirtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"tradeunit"
)

// testConcurrentInsert: writers on two handles race to create one key;
// exactly one wins and every other sees that winner.
func testConcurrentInsert(t *testing.T, open Opener) {
	handles := []tradeunit.DirectoryStore{open(t), open(t)}
	k := key(mchA)
	const writers = 32
	results := make([]tradeunit.PutResult, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			results[i] = handles[i%2].Put(context.Background(), []*tradeunit.DirectoryEntry{pending(k, tradeunit.UnitID(i+1))})[0]
		})
	}
	close(start)
	wg.Wait()
	var winner *tradeunit.DirectoryEntry
	for _, r := range results {
		if r.Err == nil {
			if winner != nil {
				t.Fatalf("two winners: %+v and %+v", winner, r.Entry)
			}
			winner = r.Entry
		}
	}
	if winner == nil {
		t.Fatalf("no winner: %v", results[0].Err)
	}
	for i, r := range results {
		if r.Err != nil {
			wantConflict(t, fmt.Sprintf("writer %d", i), r, winner)
		}
	}
	stored(t, handles[0], winner)
}

// testConcurrentMove: writers race to move one pending entry, round after
// round; each version has exactly one winner, and the losers of a round
// see it.
func testConcurrentMove(t *testing.T, open Opener) {
	handles := []tradeunit.DirectoryStore{open(t), open(t)}
	cur := pending(key(mchA), 1)
	mustPut(t, handles[0], cur)
	const writers, rounds = 16, 5
	for round := range rounds {
		results := make([]tradeunit.PutResult, writers)
		tries := make([]*tradeunit.DirectoryEntry, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			tries[i] = moved(cur, tradeunit.UnitID(i+1))
			if round == rounds-1 && i%2 == 0 {
				tries[i] = committed(cur, fmt.Sprintf("10000%d0000000000000000000001", i%10))
			}
			wg.Go(func() {
				<-start
				results[i] = handles[i%2].Put(context.Background(), []*tradeunit.DirectoryEntry{tries[i]})[0]
			})
		}
		close(start)
		wg.Wait()
		var winner *tradeunit.DirectoryEntry
		for i, r := range results {
			if r.Err == nil {
				if winner != nil {
					t.Fatalf("round %d: two moves of version %d won", round, cur.Version)
				}
				winner = tries[i]
			} else if !errors.Is(r.Err, tradeunit.ErrVersionConflict) {
				t.Fatalf("round %d: writer %d: %v", round, i, r.Err)
			}
		}
		if winner == nil {
			t.Fatalf("round %d: no move won", round)
		}
		for i, r := range results {
			if r.Err != nil {
				wantConflict(t, fmt.Sprintf("round %d, writer %d", round, i), r, winner)
			}
		}
		stored(t, handles[1], winner)
		cur = winner
	}
}

// testConcurrentBatches: writers put batches of distinct new keys and then
// commit them, all at once; every entry is stored as acknowledged.
func testConcurrentBatches(t *testing.T, open Opener) {
	handles := []tradeunit.DirectoryStore{open(t), open(t)}
	const writers, batches, size = 8, 5, 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []*tradeunit.DirectoryEntry
	for w := range writers {
		wg.Go(func() {
			s := handles[w%2]
			for b := range batches {
				var es []*tradeunit.DirectoryEntry
				for range size {
					es = append(es, pending(key(mchA), tradeunit.UnitID(w+1)))
				}
				if err := allOK(s.Put(context.Background(), es)); err != nil {
					t.Errorf("writer %d batch %d: reserve: %v", w, b, err)
					return
				}
				for i := range es {
					es[i] = committed(es[i], fmt.Sprintf("1%04d%d%022d", w+1, b%10, i))
				}
				if err := allOK(s.Put(context.Background(), es)); err != nil {
					t.Errorf("writer %d batch %d: commit: %v", w, b, err)
					return
				}
				mu.Lock()
				all = append(all, es...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(all) != writers*batches*size {
		t.Fatalf("%d entries acknowledged, want %d", len(all), writers*batches*size)
	}
	for _, e := range all {
		stored(t, handles[0], e)
	}
}

func allOK(rs []tradeunit.PutResult) error {
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}
