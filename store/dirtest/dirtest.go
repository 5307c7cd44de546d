// Package dirtest is the conformance suite every tradeunit.DirectoryStore
// passes: the same tests, run against each storage (SQLite, MariaDB) and
// each way of writing to it (direct, batched).
package dirtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
)

// Opener opens a handle on one directory storage. Calling it again opens
// another handle on the same storage, as a second replica of the directory
// shard's service would. Handles are closed when the test ends.
type Opener func(t *testing.T) tradeunit.DirectoryStore

// Buckets is what a directory store offers for moving a bucket between
// shards; the suite tests it on the stores that have it.
type Buckets interface {
	EntriesInBucket(ctx context.Context, bucket int, after tradeunit.MerchantKey, limit int) ([]*tradeunit.DirectoryEntry, error)
	CountBucket(ctx context.Context, bucket int) (int64, error)
}

// Copier is what a directory store offers for the other half of a move:
// storing a bucket's entries as they are on the shard it moves to, and
// dropping them from the one it leaves.
type Copier interface {
	Buckets
	Import(ctx context.Context, entries []*tradeunit.DirectoryEntry) error
	DeleteBucket(ctx context.Context, bucket int) (int64, error)
	Count(ctx context.Context) (int64, error)
}

// Run runs the conformance suite. newStorage creates a fresh, empty storage
// for each subtest and returns an Opener for it.
func Run(t *testing.T, newStorage func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"InsertThenGet", testInsertThenGet},
		{"InsertConflictReturnsTheWinner", testInsertConflict},
		{"UpdateWithTheRightVersion", testUpdate},
		{"StaleVersionConflicts", testStaleVersion},
		{"CommittedKeepsStateAndRecord", testCommittedKeeps},
		{"MoveKeepsHistoryInAbandoned", testMoveKeepsHistory},
		{"MixedBatch", testMixedBatch},
		{"BatchOfChangesToDistinctKeys", testBatchOfChanges},
		{"InvalidEntriesFailAlone", testInvalidEntries},
		{"AbandonedPagesInKeyOrder", testAbandonedPages},
		{"Buckets", testBuckets},
		{"ImportKeepsVersionsAndDeleteBucketDropsOneBucket", testImportAndDelete},
		{"TimesAndIDsRoundTrip", testRoundTrip},
		{"SurvivesReopen", testReopen},
		{"ConcurrentInsertsOfOneKeyHaveOneWinner", testConcurrentInsert},
		{"ConcurrentMovesHaveOneWinnerPerVersion", testConcurrentMove},
		{"ConcurrentBatchesOfDistinctKeys", testConcurrentBatches},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStorage(t)) })
	}
}

const (
	mchA = "1900000001"
	mchB = "1900000002"
)

var seq atomic.Uint64

// key returns a fresh order key of mchid.
func key(mchid string) tradeunit.MerchantKey {
	return tradeunit.MerchantKey{Mchid: mchid, Kind: tradeunit.KeyOrder, Value: fmt.Sprintf("otn-%08d", seq.Add(1))}
}

// attempt returns a fresh attempt on unit. Attempt ids are random uint64s:
// every other one here has the high bit set, as half of the real ones do.
func attempt(unit tradeunit.UnitID) tradeunit.Attempt {
	id := 1000 + seq.Add(1)
	if id%2 == 0 {
		id |= 1 << 63
	}
	return tradeunit.Attempt{Unit: unit, ID: id}
}

var clock atomic.Int64

// now returns distinct, increasing times at microsecond precision, in UTC.
func now() time.Time {
	return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(clock.Add(1)) * time.Microsecond)
}

// pending returns a new pending entry (version 1) for k.
func pending(k tradeunit.MerchantKey, unit tradeunit.UnitID) *tradeunit.DirectoryEntry {
	t := now()
	return &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryPending, Attempt: attempt(unit),
		Fingerprint: "fp-" + k.Value, Created: t, Updated: t, Version: 1}
}

// next returns e's successor: the same entry at the next version.
func next(e *tradeunit.DirectoryEntry) *tradeunit.DirectoryEntry {
	n := e.Clone()
	n.Version++
	n.Updated = now()
	return n
}

// moved returns e moved to a new attempt on unit, the old one abandoned.
func moved(e *tradeunit.DirectoryEntry, unit tradeunit.UnitID) *tradeunit.DirectoryEntry {
	n := next(e)
	n.Abandoned = append(n.Abandoned, e.Attempt)
	n.Attempt = attempt(unit)
	return n
}

// committed returns e committed to record.
func committed(e *tradeunit.DirectoryEntry, record string) *tradeunit.DirectoryEntry {
	n := next(e)
	n.State, n.RecordNo = tradeunit.EntryCommitted, record
	return n
}

func put(t *testing.T, s tradeunit.DirectoryStore, entries ...*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	t.Helper()
	rs := s.Put(context.Background(), entries)
	if len(rs) != len(entries) {
		t.Fatalf("Put of %d entries: got %d results", len(entries), len(rs))
	}
	return rs
}

// mustPut puts entries and fails unless each was stored.
func mustPut(t *testing.T, s tradeunit.DirectoryStore, entries ...*tradeunit.DirectoryEntry) {
	t.Helper()
	for i, r := range put(t, s, entries...) {
		if r.Err != nil {
			t.Fatalf("Put %s (version %d): %v", entries[i].Key, entries[i].Version, r.Err)
		}
		sameEntry(t, "Put's result", r.Entry, entries[i])
	}
}

// wantConflict fails unless r is a version conflict whose entry is winner
// (nil: none is stored).
func wantConflict(t *testing.T, what string, r tradeunit.PutResult, winner *tradeunit.DirectoryEntry) {
	t.Helper()
	if !errors.Is(r.Err, tradeunit.ErrVersionConflict) {
		t.Fatalf("%s: got error %v, want a version conflict", what, r.Err)
	}
	if winner == nil {
		if r.Entry != nil {
			t.Fatalf("%s: conflict with %+v, want no entry", what, r.Entry)
		}
		if !tradeunit.IsCode(r.Err, tradeunit.CodeNotFound) {
			t.Fatalf("%s: got %v, want RESOURCE_NOT_EXISTS", what, r.Err)
		}
		return
	}
	sameEntry(t, what+": the winner", r.Entry, winner)
}

// sameEntry fails unless got is want as stored: equal fields, times equal
// at microseconds and in UTC, an empty list as nil.
func sameEntry(t *testing.T, what string, got, want *tradeunit.DirectoryEntry) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got no entry, want %+v", what, want)
	}
	w := want.Clone()
	w.Created, w.Updated = w.Created.Truncate(time.Microsecond).UTC(), w.Updated.Truncate(time.Microsecond).UTC()
	if len(w.Abandoned) == 0 {
		w.Abandoned = nil
	}
	g := got.Clone()
	if len(g.Abandoned) == 0 {
		g.Abandoned = nil
	}
	if !g.Created.Equal(w.Created) || !g.Updated.Equal(w.Updated) ||
		g.Created.Location() != time.UTC || g.Updated.Location() != time.UTC {
		t.Fatalf("%s: times %v / %v, want %v / %v in UTC", what, g.Created, g.Updated, w.Created, w.Updated)
	}
	g.Created, g.Updated, w.Created, w.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// stored fails unless the storage holds want for want's key.
func stored(t *testing.T, s tradeunit.DirectoryStore, want *tradeunit.DirectoryEntry) {
	t.Helper()
	got, err := s.Entry(context.Background(), want.Key)
	if err != nil {
		t.Fatalf("Entry(%s): %v", want.Key, err)
	}
	sameEntry(t, "Entry("+want.Key.String()+")", got, want)
}

func absent(t *testing.T, s tradeunit.DirectoryStore, k tradeunit.MerchantKey) {
	t.Helper()
	if e, err := s.Entry(context.Background(), k); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("Entry(%s): got %+v, %v; want RESOURCE_NOT_EXISTS", k, e, err)
	}
}

func testInsertThenGet(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	e := pending(key(mchA), 3)
	e.Abandoned = []tradeunit.Attempt{attempt(1), attempt(2)}
	mustPut(t, s, e)
	stored(t, s, e)
	absent(t, s, key(mchA))
	// The same value under another merchant or kind is another key.
	absent(t, s, tradeunit.MerchantKey{Mchid: mchB, Kind: e.Key.Kind, Value: e.Key.Value})
	absent(t, s, tradeunit.MerchantKey{Mchid: mchA, Kind: tradeunit.KeyRefund, Value: e.Key.Value})
	if _, err := s.Entry(ctx, tradeunit.MerchantKey{Mchid: mchA, Kind: "bogus", Value: "otn-1"}); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Fatalf("Entry of an invalid key: got %v, want PARAM_ERROR", err)
	}
	refund := pending(tradeunit.MerchantKey{Mchid: mchA, Kind: tradeunit.KeyRefund, Value: e.Key.Value}, 3)
	mustPut(t, s, refund)
	stored(t, s, refund)
	stored(t, s, e)
}

func testInsertConflict(t *testing.T, open Opener) {
	s := open(t)
	first := pending(key(mchA), 1)
	mustPut(t, s, first)
	second := pending(first.Key, 2)
	r := put(t, s, second)[0]
	wantConflict(t, "second insert", r, first)
	if tradeunit.IsCode(r.Err, tradeunit.CodeUnitUnavailable) || tradeunit.OutcomeUnknown(r.Err) {
		t.Fatalf("a conflict is a definite answer, got %v", r.Err)
	}
	stored(t, s, first)
}

func testUpdate(t *testing.T, open Opener) {
	s := open(t)
	v1 := pending(key(mchA), 1)
	mustPut(t, s, v1)
	v2 := moved(v1, 2)
	mustPut(t, s, v2)
	stored(t, s, v2)
	v3 := committed(v2, "1000020000000000000000000001")
	mustPut(t, s, v3)
	stored(t, s, v3)
}

func testStaleVersion(t *testing.T, open Opener) {
	s := open(t)
	v1 := pending(key(mchA), 1)
	mustPut(t, s, v1)
	v2 := moved(v1, 2)
	mustPut(t, s, v2)
	// Another writer that read v1 too.
	wantConflict(t, "a second move from version 1", put(t, s, moved(v1, 3))[0], v2)
	wantConflict(t, "a commit from version 1", put(t, s, committed(v1, "1000010000000000000000000001"))[0], v2)
	ahead := next(v2)
	ahead.Version = 7
	wantConflict(t, "a version ahead of the stored one", put(t, s, ahead)[0], v2)
	stored(t, s, v2)
	// A version above 1 for a key that has no entry.
	missing := next(pending(key(mchA), 1))
	wantConflict(t, "an update of a missing key", put(t, s, missing)[0], nil)
	absent(t, s, missing.Key)
}

func testCommittedKeeps(t *testing.T, open Opener) {
	s := open(t)
	const record = "1000010000000000000000000009"
	v1 := pending(key(mchA), 1)
	v1.Abandoned = []tradeunit.Attempt{attempt(4), attempt(5)}
	mustPut(t, s, v1)
	v2 := committed(v1, record)
	mustPut(t, s, v2)
	changes := map[string]func(e *tradeunit.DirectoryEntry){
		"another record":      func(e *tradeunit.DirectoryEntry) { e.RecordNo = "1000010000000000000000000010" },
		"back to pending":     func(e *tradeunit.DirectoryEntry) { e.State, e.RecordNo = tradeunit.EntryPending, "" },
		"another attempt":     func(e *tradeunit.DirectoryEntry) { e.Attempt = attempt(2) },
		"another fingerprint": func(e *tradeunit.DirectoryEntry) { e.Fingerprint = "fp-other" },
	}
	for name, change := range changes {
		v3 := next(v2)
		change(v3)
		wantConflict(t, "committed entry, "+name+", at the right version", put(t, s, v3)[0], v2)
	}
	stored(t, s, v2)
	// The reconciler's work: drop abandoned attempts one by one.
	v3 := next(v2)
	v3.Abandoned = v3.Abandoned[1:]
	mustPut(t, s, v3)
	v4 := next(v3)
	v4.Abandoned = nil
	mustPut(t, s, v4)
	stored(t, s, v4)
}

func testMoveKeepsHistory(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	v1 := pending(key(mchA), 1)
	mustPut(t, s, v1)
	if got, err := s.Abandoned(ctx, tradeunit.MerchantKey{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("Abandoned with none abandoned: got %v, %v", got, err)
	}
	v2 := moved(v1, 2)
	v3 := moved(v2, 3)
	mustPut(t, s, v2)
	mustPut(t, s, v3)
	stored(t, s, v3)
	if len(v3.Abandoned) != 2 || v3.Abandoned[0] != v1.Attempt || v3.Abandoned[1] != v2.Attempt {
		t.Fatalf("test setup: abandoned %v", v3.Abandoned)
	}
	got, err := s.Abandoned(ctx, tradeunit.MerchantKey{}, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Abandoned: got %d entries, %v; want 1", len(got), err)
	}
	sameEntry(t, "Abandoned", got[0], v3)
	v4 := committed(v3, "1000030000000000000000000001")
	mustPut(t, s, v4)
	v5 := next(v4)
	v5.Abandoned = nil
	mustPut(t, s, v5)
	if got, err := s.Abandoned(ctx, tradeunit.MerchantKey{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("Abandoned once reconciled: got %v, %v; want none", got, err)
	}
}

func testMixedBatch(t *testing.T, open Opener) {
	s := open(t)
	k1 := pending(key(mchA), 1) // stored at version 1
	k2 := pending(key(mchA), 1) // stored at version 2
	mustPut(t, s, k1)
	mustPut(t, s, k2)
	k2v2 := moved(k2, 2)
	mustPut(t, s, k2v2)

	newA := pending(key(mchB), 1)
	dupK1 := pending(k1.Key, 5)
	commitK2 := committed(k2v2, "1000020000000000000000000002")
	missing := next(pending(key(mchB), 1))
	invalid := pending(key(mchA), 1)
	invalid.Attempt.ID = 0
	newB := pending(key(mchA), 1)
	staleK2 := moved(k2, 3) // version 2 again: loses to k2v2
	batch := []*tradeunit.DirectoryEntry{newA, dupK1, commitK2, missing, invalid, newB, staleK2}
	rs := put(t, s, batch...)
	for _, i := range []int{0, 2, 5} {
		if rs[i].Err != nil {
			t.Fatalf("result %d (%s): %v", i, batch[i].Key, rs[i].Err)
		}
		sameEntry(t, fmt.Sprintf("result %d", i), rs[i].Entry, batch[i])
		stored(t, s, batch[i])
	}
	wantConflict(t, "result 1, an insert of a stored key", rs[1], k1)
	wantConflict(t, "result 3, an update of a missing key", rs[3], nil)
	if !tradeunit.IsCode(rs[4].Err, tradeunit.CodeParamError) || errors.Is(rs[4].Err, tradeunit.ErrVersionConflict) {
		t.Fatalf("result 4, invalid: got %v, want PARAM_ERROR", rs[4].Err)
	}
	absent(t, s, invalid.Key)
	// k2 comes twice, so its entries go in the order given: the commit
	// (version 3) first, which wins; then the stale move (version 2),
	// which loses to it.
	wantConflict(t, "result 6, a stale move", rs[6], commitK2)
	stored(t, s, k1)
	stored(t, s, commitK2)
	absent(t, s, missing.Key)
}

func testInvalidEntries(t *testing.T, open Opener) {
	s := open(t)
	stored1 := pending(key(mchA), 1)
	mustPut(t, s, stored1)
	tests := map[string]func(e *tradeunit.DirectoryEntry){
		"bad mchid":                 func(e *tradeunit.DirectoryEntry) { e.Key.Mchid = "" },
		"bad kind":                  func(e *tradeunit.DirectoryEntry) { e.Key.Kind = "invoice" },
		"bad value":                 func(e *tradeunit.DirectoryEntry) { e.Key.Value = "x" },
		"bad state":                 func(e *tradeunit.DirectoryEntry) { e.State = "done" },
		"committed without record":  func(e *tradeunit.DirectoryEntry) { e.State = tradeunit.EntryCommitted },
		"pending with a record":     func(e *tradeunit.DirectoryEntry) { e.RecordNo = "1000010000000000000000000001" },
		"attempt id 0":              func(e *tradeunit.DirectoryEntry) { e.Attempt.ID = 0 },
		"attempt unit 0":            func(e *tradeunit.DirectoryEntry) { e.Attempt.Unit = 0 },
		"attempt unit out of range": func(e *tradeunit.DirectoryEntry) { e.Attempt.Unit = tradeunit.MaxUnitID + 1 },
		"abandoned id 0":            func(e *tradeunit.DirectoryEntry) { e.Abandoned = []tradeunit.Attempt{{Unit: 1}} },
		"version 0":                 func(e *tradeunit.DirectoryEntry) { e.Version = 0 },
		"negative version":          func(e *tradeunit.DirectoryEntry) { e.Version = -1 },
		"fingerprint too long":      func(e *tradeunit.DirectoryEntry) { e.Fingerprint = string(make([]byte, 65)) },
		"record too long": func(e *tradeunit.DirectoryEntry) {
			e.State, e.RecordNo = tradeunit.EntryCommitted, "10000100000000000000000000011000010000000000000000000001"
		},
		"too many abandoned": func(e *tradeunit.DirectoryEntry) {
			for range 1000 {
				e.Abandoned = append(e.Abandoned, attempt(1))
			}
		},
		// An invalid update of a stored key changes nothing either.
		"invalid update of a stored key": func(e *tradeunit.DirectoryEntry) {
			*e = *next(stored1)
			e.State = "done"
		},
	}
	for name, spoil := range tests {
		bad := pending(key(mchA), 1)
		spoil(bad)
		good := pending(key(mchB), 1)
		rs := put(t, s, bad, good, nil)
		if !tradeunit.IsCode(rs[0].Err, tradeunit.CodeParamError) || rs[0].Entry != nil {
			t.Fatalf("%s: got %+v, %v; want PARAM_ERROR alone", name, rs[0].Entry, rs[0].Err)
		}
		if !tradeunit.IsCode(rs[2].Err, tradeunit.CodeParamError) {
			t.Fatalf("%s: a nil entry: got %v, want PARAM_ERROR", name, rs[2].Err)
		}
		if rs[1].Err != nil {
			t.Fatalf("%s: the valid entry beside it failed: %v", name, rs[1].Err)
		}
		stored(t, s, good)
	}
	stored(t, s, stored1)
	if rs := s.Put(context.Background(), nil); len(rs) != 0 {
		t.Fatalf("Put of no entries: got %v", rs)
	}
}

func testAbandonedPages(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	var want []*tradeunit.DirectoryEntry
	var all []*tradeunit.DirectoryEntry
	for i := range 23 {
		mchid := []string{mchB, mchA, "1900000003"}[i%3]
		e := pending(key(mchid), 1)
		if i%4 == 1 {
			e.Key.Kind = tradeunit.KeyRefund
		}
		if i%3 != 2 {
			e.Abandoned = []tradeunit.Attempt{attempt(tradeunit.UnitID(i + 1))}
			want = append(want, e)
		}
		all = append(all, e)
	}
	mustPut(t, s, all...)
	sortKeys(want)
	var got []*tradeunit.DirectoryEntry
	after := tradeunit.MerchantKey{}
	for pages := 0; ; pages++ {
		page, err := s.Abandoned(ctx, after, 4)
		if err != nil {
			t.Fatalf("Abandoned after %s: %v", after, err)
		}
		if len(page) > 4 || pages > 10 {
			t.Fatalf("page of %d entries (limit 4), page %d", len(page), pages)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Key
	}
	if len(got) != len(want) {
		t.Fatalf("Abandoned listed %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		sameEntry(t, fmt.Sprintf("Abandoned entry %d", i), got[i], want[i])
	}
	if _, err := s.Abandoned(ctx, tradeunit.MerchantKey{}, 0); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Fatalf("Abandoned with limit 0: got %v, want PARAM_ERROR", err)
	}
}

// testBatchOfChanges: one Put changes many stored keys, some of them
// allowed and some not; each gets its own outcome.
func testBatchOfChanges(t *testing.T, open Opener) {
	s := open(t)
	var base []*tradeunit.DirectoryEntry
	for range 12 {
		base = append(base, pending(key(mchA), 1))
	}
	mustPut(t, s, base...)
	done := committed(base[3], "1000010000000000000000000003")
	mustPut(t, s, done)
	var batch []*tradeunit.DirectoryEntry
	var wantOK []bool
	var winners []*tradeunit.DirectoryEntry
	add := func(e *tradeunit.DirectoryEntry, ok bool, winner *tradeunit.DirectoryEntry) {
		batch, wantOK, winners = append(batch, e), append(wantOK, ok), append(winners, winner)
	}
	for i, b := range base {
		switch i {
		case 3: // committed: another record loses, whatever the version
			other := committed(done, "1000010000000000000000000004")
			other.Version = done.Version + 1
			add(other, false, done)
		case 5: // stale
			stale := moved(b, 2)
			stale.Version = 1
			add(stale, false, b)
		case 7: // ahead
			ahead := moved(b, 2)
			ahead.Version = 3
			add(ahead, false, b)
		case 9:
			add(committed(b, "1000010000000000000000000009"), true, nil)
		default:
			add(moved(b, 2), true, nil)
		}
	}
	add(next(pending(key(mchA), 1)), false, nil) // missing
	rs := put(t, s, batch...)
	for i, r := range rs {
		switch {
		case wantOK[i]:
			if r.Err != nil {
				t.Fatalf("entry %d: %v", i, r.Err)
			}
			stored(t, s, batch[i])
		default:
			wantConflict(t, fmt.Sprintf("entry %d", i), r, winners[i])
		}
	}
	stored(t, s, done)
	stored(t, s, base[5])
}
