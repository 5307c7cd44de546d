package relay_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
)

// TestRelayHeldTransaction: a transaction that numbers an event and commits
// after many later ones; the relay publishes every event, each order's in
// order, and its cursor waits for the late one. Rolled back, the cursor
// moves past its gap once its writer has ended.
func TestRelayHeldTransaction(t *testing.T) {
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "Commits", false: "RollsBack"}[commit]
		t.Run(name, func(t *testing.T) {
			eachStorage(t, func(t *testing.T, st storage) {
				log := &busLog{}
				r := startRelay(t, st.store, "a", &recorder{log: log})
				held, heldOrder := holdAgainstWriters(t, st, follower{log: log, held: relayPastHeld(t, r)}, commit)
				events := outbox(t, st.store)
				lastID := events[len(events)-1].ID
				waitFor(t, 20*time.Second, fmt.Sprintf("cursor at the last event %d", lastID), func() bool {
					return log.has(events) && r.metric(t, "tradeunit_relay_cursor") == float64(lastID)
				})
				// SQLite numbers again what a rollback left: look for the
				// held order, not its number.
				if got := slices.ContainsFunc(events, func(e tradeunit.Event) bool { return e.OrderNo == heldOrder }); got != commit {
					t.Fatalf("held event %d of order %s in the outbox: got %v, want %v", held, heldOrder, got, commit)
				}
				r.stop(t)
				checkInvariants(t, st, log, r.spy)
				// Stopped, the relay released its lease: another holder
				// takes it at once, with the cursor it saved.
				c, err := st.store.AcquireRelay(context.Background(), "events", "b", leaseTTL, time.Now())
				if err != nil || c != lastID {
					t.Fatalf("AcquireRelay after the relay stopped: got %d, %v; want %d", c, err, lastID)
				}
			})
		})
	}
}

// TestNaiveFollowerSkipsLateCommit: a follower that only reads after the
// highest id it saw misses the event of a transaction that commits late,
// and verify says so: the checks above can fail. SQLite has one writer at
// a time, so no commit is late there.
func TestNaiveFollowerSkipsLateCommit(t *testing.T) {
	st := mysqlStorage(t)
	log := &busLog{}
	var (
		highest, reads atomic.Int64
		mu             sync.Mutex
		saves          []save
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			page, err := st.store.Events(ctx, highest.Load(), 100)
			if err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
			reads.Add(1)
			if len(page) == 0 {
				time.Sleep(5 * time.Millisecond) // idle, as the relay is
				continue
			}
			out := make([]tradeunit.OrderEvent, len(page))
			for i, e := range page {
				if out[i], err = e.OrderEvent(unit); err != nil {
					t.Error(err)
					return
				}
			}
			log.add(out)
			highest.Store(page[len(page)-1].ID)
			mu.Lock()
			saves = append(saves, save{cursor: highest.Load(), published: log.len()})
			mu.Unlock()
		}
	}()
	held, _ := holdAgainstWriters(t, st, follower{log: log, held: func(h int64) bool { return log.maxSeq() > h }}, true)
	events := outbox(t, st.store)
	lastID := events[len(events)-1].ID
	// Two reads that began after the commit: the follower has seen all it
	// ever will.
	after := reads.Load()
	waitFor(t, 10*time.Second, "the naive follower caught up", func() bool {
		return highest.Load() == lastID && reads.Load() >= after+2
	})
	cancel()
	<-done

	mu.Lock()
	problems := verify(events, log.snapshot(), saves)
	mu.Unlock()
	for _, want := range []string{
		fmt.Sprintf("event %d never published", held),
		fmt.Sprintf("before event %d was published", held),
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("verify of the naive follower: got %q, want a problem %q", problems, want)
		}
	}
}

// TestRelayLease: of two relays on one unit, one publishes at a time. One
// that stops renewing (blocked in Publish) is taken over after its lease
// expires and cannot move the cursor when it wakes; one stopped cleanly
// hands over at once; nothing is lost either way.
func TestRelayLease(t *testing.T) {
	eachStorage(t, func(t *testing.T, st storage) {
		log := &busLog{}
		mustCreateAndPay(t, st.store, 2)
		a := startRelay(t, st.store, "a", &recorder{log: log})
		waitFor(t, 10*time.Second, "relay a leads", func() bool { return a.leader(t) })
		first := outbox(t, st.store)
		waitFor(t, 10*time.Second, "relay a publishes and saves the outbox", func() bool {
			return log.has(first) && storedCursor(t, st.db) == first[len(first)-1].ID
		})

		b := startRelay(t, st.store, "b", &recorder{log: log})
		waitFor(t, 10*time.Second, "relay b refused the lease twice", func() bool {
			_, refused := b.spy.recorded()
			return refused >= 2
		})
		if calls, _, _ := b.pub.stats(); calls != 0 || b.leader(t) || !a.leader(t) {
			t.Fatalf("while a leads: b published %d times, leaders a %v b %v; want 0, a only", calls, a.leader(t), b.leader(t))
		}

		// a stops renewing: blocked in Publish with the next events.
		releaseA, releaseB := a.pub.block(), b.pub.block()
		mustCreateAndPay(t, st.store, 2)
		waitFor(t, 10*time.Second, "relay a blocked in Publish", func() bool { _, _, blocked := a.pub.stats(); return blocked > 0 })
		blockedAt := time.Now()
		waitFor(t, 10*time.Second, "relay b takes over", func() bool { return b.leader(t) })
		// a renewed at most a third of the TTL before it blocked.
		if took := time.Since(blockedAt); took < leaseTTL/2 {
			t.Fatalf("b took over %s after a blocked, want no sooner than its lease could expire (%s)", took, leaseTTL/2)
		}
		waitFor(t, 10*time.Second, "relay b blocked in Publish", func() bool { _, _, blocked := b.pub.stats(); return blocked > 0 })
		stored := storedCursor(t, st.db)
		releaseA()
		waitFor(t, 10*time.Second, "relay a's late save", func() bool {
			saves, _ := a.spy.recorded()
			return saves[len(saves)-1].err != nil
		})
		saves, _ := a.spy.recorded()
		late := saves[len(saves)-1]
		if !tradeunit.IsCode(late.err, tradeunit.CodeLeaseHeld) {
			t.Fatalf("a's save after the takeover: got %v, want LEASE_HELD", late.err)
		}
		if got := storedCursor(t, st.db); got != stored || late.cursor <= stored {
			t.Fatalf("cursor after a's refused save of %d: got %d, want %d unmoved", late.cursor, got, stored)
		}
		waitFor(t, 10*time.Second, "relay a gives up leading", func() bool { return !a.leader(t) })
		aCalls, _, _ := a.pub.stats()

		releaseB()
		second := outbox(t, st.store)
		waitFor(t, 10*time.Second, "relay b publishes and saves the outbox", func() bool {
			return log.has(second) && storedCursor(t, st.db) == second[len(second)-1].ID
		})
		if calls, _, _ := a.pub.stats(); calls != aCalls {
			t.Fatalf("a published %d times while b led, want none", calls-aCalls)
		}

		// b stopped cleanly: it releases, and a takes over without
		// waiting for the lease to expire.
		b.stop(t)
		stoppedAt := time.Now()
		waitFor(t, 10*time.Second, "relay a leads again", func() bool { return a.leader(t) })
		if took := time.Since(stoppedAt); took >= leaseTTL/2 {
			t.Fatalf("a took over %s after b stopped, want sooner than the lease could expire (%s)", took, leaseTTL/2)
		}
		mustCreateAndPay(t, st.store, 2)
		third := outbox(t, st.store)
		waitFor(t, 10*time.Second, "relay a publishes and saves the outbox", func() bool {
			return log.has(third) && storedCursor(t, st.db) == third[len(third)-1].ID
		})
		a.stop(t)
		checkInvariants(t, st, log, a.spy, b.spy)
	})
}

// TestRelayRetriesPublish: a bus that refuses the first three batches gets
// every event in the end, and the cursor waits for it.
func TestRelayRetriesPublish(t *testing.T) {
	eachStorage(t, func(t *testing.T, st storage) {
		log := &busLog{}
		mustCreateAndPay(t, st.store, 3)
		pub := &recorder{log: log, failNext: 3}
		r := startRelay(t, st.store, "a", pub)
		events := outbox(t, st.store)
		lastID := events[len(events)-1].ID
		waitFor(t, 10*time.Second, "every event published and the cursor saved", func() bool {
			return log.has(events) && storedCursor(t, st.db) == lastID
		})
		r.stop(t)
		if _, failed, _ := pub.stats(); failed != 3 {
			t.Fatalf("refused publishes: got %d, want 3", failed)
		}
		if got := r.metric(t, "tradeunit_relay_failures_total"); got < 3 {
			t.Fatalf("relay failures: got %v, want at least 3", got)
		}
		saves, _ := r.spy.recorded()
		for _, s := range saves {
			if s.err == nil && s.published == 0 {
				t.Fatalf("cursor %d saved before anything was published", s.cursor)
			}
		}
		checkInvariants(t, st, log, r.spy)
	})
}
