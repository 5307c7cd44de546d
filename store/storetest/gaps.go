package storetest

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"tradeunit"
)

// RawStorage is a fresh storage for the tests that need a way beneath its
// Store: the outbox's gap tests (a transaction of their own, that numbers
// an event and holds it uncommitted while the store commits others) and
// the group commit's fault tests (locks, triggers, a freeze by hand).
type RawStorage struct {
	Open Opener
	// DB opens the storage's database with database/sql; the test closes
	// it.
	DB func(t *testing.T) *sql.DB
	// OneWriter says the storage has one writer at a time (SQLite): a gap
	// below the newest event is final at once, and OpenWriters is empty.
	OneWriter bool
	// Dialect is the storage's SQL, "sqlite" or "mysql", for the tests
	// that inject faults with statements of their own.
	Dialect string
}

// RunGaps runs the outbox's gap tests: what a relay that sees event n+1
// but not n learns from OpenWriters, WritersEnded and EventsIn.
func RunGaps(t *testing.T, newStorage func(t *testing.T) RawStorage) {
	if newStorage(t).OneWriter {
		t.Run("OneWriterGapIsFinal", func(t *testing.T) { testOneWriterGap(t, newStorage(t)) })
		return
	}
	t.Run("SlowWriterCommits", func(t *testing.T) { testSlowWriter(t, newStorage(t), true) })
	t.Run("SlowWriterRollsBack", func(t *testing.T) { testSlowWriter(t, newStorage(t), false) })
}

// pollFor calls cond every interval until it holds, failing the test after
// timeout: a wait for a state, never for a time.
func pollFor(t *testing.T, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(interval)
	}
}

// beginEvent opens a transaction on db that numbers one outbox event of
// orderNo and holds it, and returns it with the event's id.
func beginEvent(t *testing.T, db *sql.DB, orderNo string) (*sql.Tx, int64) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	res, err := tx.Exec("INSERT INTO order_events (order_no, event_type, payload, create_time) VALUES (?, ?, ?, ?)",
		orderNo, string(tradeunit.EventOrderPaid), `{"held":true}`, tradeunit.UnixMicros(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return tx, id
}

// innoDBTrxPoll is how often the tests read INNODB_TRX: slower than its
// cache's 100 ms, which a quicker read keeps from refreshing.
const innoDBTrxPoll = 150 * time.Millisecond

func eventIDs(es []tradeunit.Event) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// testSlowWriter: a transaction numbers an event and holds it while others
// commit after it; a relay that sees the gap learns from OpenWriters and
// WritersEnded when it may conclude, and then EventsIn says whether the gap
// filled (commit) or never will (rollback).
func testSlowWriter(t *testing.T, st RawStorage, commit bool) {
	ctx := context.Background()
	s := st.Open(t)
	ob := outboxOf(t, s)
	db := st.DB(t)
	defer db.Close()
	slow := mustCreate(t, s, newOrder(t, mchA, 100))
	tx, held := beginEvent(t, db, slow.OrderNo)
	// INNODB_TRX is a cache that a read refreshes only after 100 ms
	// without reads: the slow transaction shows in it later, if it is
	// read slower than that.
	var trxID string
	pollFor(t, 10*time.Second, innoDBTrxPoll, "the slow transaction in INNODB_TRX", func() bool {
		err := tx.QueryRow("SELECT trx_id FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = CONNECTION_ID()").Scan(&trxID)
		if err != nil && err != sql.ErrNoRows {
			t.Fatalf("the slow transaction's id: %v", err)
		}
		return err == nil
	})
	for range 3 {
		mustCreate(t, s, newOrder(t, mchA, 1))
	}
	events := allEvents(t, s)
	seen := time.Now()
	ids := eventIDs(events)
	if slices.Contains(ids, held) || ids[len(ids)-1] < held {
		t.Fatalf("events: got %v, want a gap at %d below the newest", ids, held)
	}

	w, err := ob.OpenWriters(ctx, seen)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(w, trxID) {
		t.Fatalf("OpenWriters: got %v, want it to hold the slow transaction %s", w, trxID)
	}
	if ended, err := ob.WritersEnded(ctx, w); err != nil || ended {
		t.Fatalf("WritersEnded with the slow transaction open: got %v, %v; want false", ended, err)
	}
	if got, err := eventsIn(ctx, ob, []int64{held}); err != nil || len(got) != 0 {
		t.Fatalf("EventsIn(%d) while it is open: got %v, %v; want none", held, eventIDs(got), err)
	}

	end, want := tx.Rollback, []int64{}
	if commit {
		end, want = tx.Commit, []int64{held}
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, 10*time.Second, innoDBTrxPoll, "WritersEnded after the slow transaction ended", func() bool {
		ended, err := ob.WritersEnded(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		return ended
	})
	got, err := eventsIn(ctx, ob, []int64{held})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(eventIDs(got), want) {
		t.Fatalf("EventsIn(%d) once the writers ended: got %v, want %v", held, eventIDs(got), want)
	}
}

// testOneWriterGap: with one writer at a time, OpenWriters is empty at
// once; a rolled-back event leaves no number below the newest event
// unaccounted for, and the gap a deleted event leaves is final.
func testOneWriterGap(t *testing.T, st RawStorage) {
	ctx := context.Background()
	s := st.Open(t)
	ob := outboxOf(t, s)
	db := st.DB(t)
	defer db.Close()
	first := mustCreate(t, s, newOrder(t, mchA, 1))
	tx, rolledBack := beginEvent(t, db, first.OrderNo)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	probe := newOrder(t, tradeunit.ProbeMchid, 1)
	probe.CreateTime = probe.CreateTime.Add(-time.Hour)
	mustCreate(t, s, probe)
	mustCreate(t, s, newOrder(t, mchA, 1))
	if n, err := s.DeleteProbeOrders(ctx, time.Now(), 10); err != nil || n != 1 {
		t.Fatalf("DeleteProbeOrders: got %d, %v; want 1", n, err)
	}
	ids := eventIDs(allEvents(t, s))
	if len(ids) != 2 || ids[1] != ids[0]+2 {
		t.Fatalf("events: got %v, want two with the deleted probe's gap between them", ids)
	}
	// The rolled-back number was taken again or lies in the deleted gap:
	// either way, no number below the newest belongs to an open writer.
	if rolledBack > ids[1] {
		t.Fatalf("rolled-back event %d is above the newest %d", rolledBack, ids[1])
	}
	w, err := ob.OpenWriters(ctx, time.Now())
	if err != nil || len(w) != 0 {
		t.Fatalf("OpenWriters: got %v, %v; want none", w, err)
	}
	if ended, err := ob.WritersEnded(ctx, w); err != nil || !ended {
		t.Fatalf("WritersEnded(none): got %v, %v; want true", ended, err)
	}
	if got, err := eventsIn(ctx, ob, []int64{ids[0] + 1}); err != nil || len(got) != 0 {
		t.Fatalf("EventsIn(the gap): got %v, %v; want none", eventIDs(got), err)
	}
}
