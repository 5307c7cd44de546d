package dirtest

import (
	"context"
	"testing"

	"tradeunit"
)

// testImportAndDelete: a bucket listed, deleted and imported again reads
// back exactly, versions included, so that compare-and-swap goes on from
// where it was; an import that meets a held key or an invalid entry writes
// nothing; DeleteBucket drops one bucket only.
func testImportAndDelete(t *testing.T, open Opener) {
	s := open(t)
	cp, ok := s.(Copier)
	if !ok {
		t.Skipf("%T cannot import or delete a bucket", s)
	}
	ctx := context.Background()
	bucket, keys := keysInBucket(mchA, 4)
	var want []*tradeunit.DirectoryEntry
	for i, k := range keys {
		e := pending(k, 1)
		mustPut(t, s, e)
		for step := 0; step < i; step++ { // versions 1 to 4, with history
			if step == 2 {
				e = committed(e, "1000010000000000000000000001")
			} else {
				e = moved(e, tradeunit.UnitID(step+2))
			}
			mustPut(t, s, e)
		}
		want = append(want, e)
	}
	other := pending(key(mchB), 1)
	for other.Key.Bucket() == bucket {
		other = pending(key(mchB), 1)
	}
	mustPut(t, s, other)
	sortKeys(want)

	listed, err := cp.EntriesInBucket(ctx, bucket, tradeunit.MerchantKey{}, 100)
	if err != nil || len(listed) != len(want) {
		t.Fatalf("EntriesInBucket: %d entries, %v; want %d", len(listed), err, len(want))
	}
	if n, err := cp.DeleteBucket(ctx, bucket); err != nil || n != int64(len(want)) {
		t.Fatalf("DeleteBucket: %d, %v; want %d", n, err, len(want))
	}
	for _, e := range want {
		absent(t, s, e.Key)
	}
	stored(t, s, other)
	if n, err := cp.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count after DeleteBucket: %d, %v; want 1", n, err)
	}
	if n, err := cp.DeleteBucket(ctx, bucket); err != nil || n != 0 {
		t.Fatalf("DeleteBucket of an empty bucket: %d, %v", n, err)
	}

	if err := cp.Import(ctx, listed); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for _, e := range want {
		stored(t, s, e)
	}
	// Compare-and-swap goes on from the imported versions: a create that
	// read version 1 of an entry now at 3 must lose, as it would have
	// before the copy, and one that read 3 must win.
	var at3, last *tradeunit.DirectoryEntry
	for _, e := range want {
		switch e.Version {
		case 3:
			at3 = e
		case 4:
			last = e
		}
	}
	if at3 == nil || at3.State != tradeunit.EntryPending || last == nil {
		t.Fatalf("want entries at versions 3 (pending) and 4: %+v", want)
	}
	stale := at3.Clone()
	stale.Version = 1
	wantConflict(t, "a put over version 1 of an entry at 3", put(t, s, moved(stale, 9))[0], at3)
	mustPut(t, s, moved(at3, 9))

	// An import that meets a held key, or an invalid entry, writes nothing.
	fresh := pending(key(mchB), 1)
	for name, batch := range map[string][]*tradeunit.DirectoryEntry{
		"held key":      {fresh, last},
		"invalid entry": {fresh, {Key: key(mchB), State: "gone", Attempt: attempt(1), Version: 1}},
		"key twice":     {fresh, fresh},
	} {
		err := cp.Import(ctx, batch)
		code := tradeunit.CodeParamError
		if name == "held key" {
			code = tradeunit.CodeInvalidRequest
		}
		if !tradeunit.IsCode(err, code) {
			t.Fatalf("Import with a %s: got %v, want %s", name, err, code)
		}
		absent(t, s, fresh.Key)
	}
	if _, err := cp.DeleteBucket(ctx, tradeunit.DirectoryBuckets); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
		t.Fatalf("DeleteBucket(%d): got %v, want PARAM_ERROR", tradeunit.DirectoryBuckets, err)
	}

	// A large import goes in several statements, all in one transaction.
	var many []*tradeunit.DirectoryEntry
	for range 150 {
		e := committed(pending(key(mchB), 2), "1000020000000000000000000002")
		e.Version = 7
		many = append(many, e)
	}
	if err := cp.Import(ctx, many); err != nil {
		t.Fatalf("Import of %d: %v", len(many), err)
	}
	stored(t, s, many[0])
	stored(t, s, many[len(many)-1])
	if n, err := cp.Count(ctx); err != nil || n != int64(1+len(want)+len(many)) {
		t.Fatalf("Count: %d, %v; want %d", n, err, 1+len(want)+len(many))
	}
}
