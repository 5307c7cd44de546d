package relay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
)

// verify checks what the bus was given against the outbox: every event
// published at least once and nothing else, each order's events first
// published in increasing version, and no successful cursor save past an
// event not yet published when it was made. It returns the problems found.
func verify(events []tradeunit.Event, published []tradeunit.OrderEvent, saves []save) []string {
	var problems []string
	first := map[int64]int{} // event id → index of its first publication
	for i, e := range published {
		if _, ok := first[e.Seq]; !ok {
			first[e.Seq] = i
		}
	}
	inOutbox := map[int64]bool{}
	for _, e := range events {
		inOutbox[e.ID] = true
		if _, ok := first[e.ID]; !ok {
			problems = append(problems, fmt.Sprintf("event %d never published", e.ID))
		}
	}
	last := map[string]int64{} // order → the version of its latest event first published
	for i, e := range published {
		if !inOutbox[e.Seq] {
			problems = append(problems, fmt.Sprintf("published event %d is not in the outbox", e.Seq))
		}
		if first[e.Seq] != i {
			continue
		}
		if v, ok := last[e.Order.OrderNo]; ok && e.Order.Version <= v {
			problems = append(problems, fmt.Sprintf("order %s: version %d (event %d) published after version %d",
				e.Order.OrderNo, e.Order.Version, e.Seq, v))
		}
		last[e.Order.OrderNo] = e.Order.Version
	}
	for _, s := range saves {
		if s.err != nil {
			continue
		}
		for _, e := range events {
			if e.ID > s.cursor {
				break
			}
			if i, ok := first[e.ID]; !ok || i >= s.published {
				problems = append(problems, fmt.Sprintf("cursor %d saved before event %d was published", s.cursor, e.ID))
				break
			}
		}
	}
	return problems
}

func checkInvariants(t *testing.T, st storage, log *busLog, spies ...*spyStore) []tradeunit.Event {
	t.Helper()
	events := outbox(t, st.store)
	var saves []save
	for _, s := range spies {
		ss, _ := s.recorded()
		saves = append(saves, ss...)
	}
	for _, p := range verify(events, log.snapshot(), saves) {
		t.Error(p)
	}
	return events
}

// follower is a reader of the outbox under test: the relay, or the naive
// one that shows the invariant checks able to fail.
type follower struct {
	log *busLog
	// held reports whether the follower has got far enough for the held
	// transaction to end: past its event on MariaDB.
	held func(heldID int64) bool
}

// holdAgainstWriters holds a raw transaction with one event while 8
// goroutines create and pay orders through the store, until f.held says the
// follower read past it, then commits or rolls it back and waits for the
// writers. It returns the held event's id and order. On SQLite the writers wait for
// the held transaction (one writer at a time): it is held until all have
// begun, and until the follower has everything committed before it.
func holdAgainstWriters(t *testing.T, st storage, f follower, commit bool) (int64, string) {
	t.Helper()
	mustCreateAndPay(t, st.store, 3)
	before := outbox(t, st.store)
	waitFor(t, 10*time.Second, "the events before the held transaction published", func() bool { return f.log.has(before) })

	tx, held, heldOrder := beginHeld(t, st.db)
	const writers, perWriter = 8, 5
	var (
		wg      sync.WaitGroup
		started atomic.Int32
	)
	for range writers {
		orders := make([]*tradeunit.Order, perWriter)
		for i := range orders {
			orders[i] = newOrder(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			if err := createAndPay(context.Background(), st.store, orders); err != nil {
				t.Error(err)
			}
		}()
	}
	if st.mysql {
		wg.Wait()
		waitFor(t, 20*time.Second, fmt.Sprintf("the follower past held event %d", held), func() bool { return f.held(held) })
	} else {
		waitFor(t, 10*time.Second, "every writer begun", func() bool { return started.Load() == writers })
	}
	end := tx.Rollback
	if commit {
		end = tx.Commit
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return held, heldOrder
}

// relayPastHeld: the relay published events numbered after the held one
// and has kept its gap open for several GapSettles: it asked which writers
// may fill it, and polled them again and again.
func relayPastHeld(t *testing.T, r *running) func(int64) bool {
	return func(held int64) bool {
		return r.pub.log.maxSeq() > held && r.metric(t, "tradeunit_relay_oldest_gap_seconds") >= (5*settle).Seconds()
	}
}
