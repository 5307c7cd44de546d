package dirstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/dsn"
	"tradeunit/store/dirstore"
	"tradeunit/store/dirtest"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
)

// open opens d as a directory store closed when the test ends.
func open(t testing.TB, d dsn.DSN) *dirstore.Store {
	t.Helper()
	s, err := dirstore.Open(context.Background(), d, storetest.TestPasswords())
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// batched wraps s in a batcher closed when the test ends.
func batched(t testing.TB, s tradeunit.DirectoryStore, cfg batch.Config) *dirstore.Batched {
	t.Helper()
	b, err := dirstore.NewBatched(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func opener(d dsn.DSN, batching bool) dirtest.Opener {
	return func(t *testing.T) tradeunit.DirectoryStore {
		t.Helper()
		s := open(t, d)
		if !batching {
			return s
		}
		return batched(t, s, batch.DefaultConfig())
	}
}

func sqliteDSN(t testing.TB) dsn.DSN {
	return dsn.MustParse("sqlite:" + filepath.Join(t.TempDir(), "directory.db"))
}

func TestSQLiteConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) dirtest.Opener { return opener(sqliteDSN(t), false) })
}

func TestSQLiteBatchedConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) dirtest.Opener { return opener(sqliteDSN(t), true) })
}

func TestMySQLConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) dirtest.Opener { return opener(storetest.NewMySQLDatabase(t), false) })
}

func TestMySQLBatchedConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) dirtest.Opener { return opener(storetest.NewMySQLDatabase(t), true) })
}

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, d := range []dsn.DSN{{}, sqlstore.LocalMySQL} {
		if _, err := dirstore.Open(context.Background(), d, nil); err == nil {
			t.Errorf("Open(%q): got nil error, want one", d)
		}
	}
}

// TestOpenRefusesAUnitsStorage: a directory store opened on a unit's
// storage refuses it, and changes nothing in it.
func TestOpenRefusesAUnitsStorage(t *testing.T) {
	for name, d := range map[string]func(t *testing.T) dsn.DSN{
		"sqlite": func(t *testing.T) dsn.DSN { return sqliteDSN(t) },
		"mysql":  func(t *testing.T) dsn.DSN { return storetest.NewMySQLDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) {
			d := d(t)
			unit, err := sqlstore.Open(context.Background(), d, storetest.TestPasswords())
			if err != nil {
				t.Fatal(err)
			}
			defer unit.Close()
			s, err := dirstore.Open(context.Background(), d, storetest.TestPasswords())
			if err == nil {
				s.Close()
				t.Fatal("a directory store opened on a unit's storage")
			}
			if !strings.Contains(err.Error(), "holds a unit's storage") {
				t.Errorf("got %v, want it to say the database holds a unit's storage", err)
			}
			// The unit's storage is untouched: it still opens and serves.
			again, err := sqlstore.Open(context.Background(), d, storetest.TestPasswords())
			if err != nil {
				t.Fatalf("the unit's storage after the refusal: %v", err)
			}
			again.Close()
		})
	}
}

// TestOpenReadOnly: opening to read creates nothing, reads what a writer
// wrote, and refuses writes without the outcome left unknown.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	missing := sqliteDSN(t)
	if _, err := dirstore.OpenReadOnly(ctx, missing, nil); err == nil {
		t.Error("OpenReadOnly of a missing SQLite file succeeded")
	}
	if _, err := os.Stat(missing.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s: %v", missing.Path, err)
	}
	d := sqliteDSN(t)
	w := open(t, d)
	e := newEntry(1)
	if r := w.Put(ctx, []*tradeunit.DirectoryEntry{e})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	ro, err := dirstore.OpenReadOnly(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Entry(ctx, e.Key); err != nil {
		t.Errorf("Entry on the read-only store: %v", err)
	}
	r := ro.Put(ctx, []*tradeunit.DirectoryEntry{newEntry(1)})[0]
	if !tradeunit.IsCode(r.Err, tradeunit.CodeUnitUnavailable) || tradeunit.OutcomeUnknown(r.Err) {
		t.Errorf("Put on the read-only store: got %v, want UNIT_UNAVAILABLE, nothing written", r.Err)
	}
}

var keySeq atomic.Uint64

// newEntry returns a new pending entry of a fresh key.
func newEntry(unit tradeunit.UnitID) *tradeunit.DirectoryEntry {
	n := keySeq.Add(1)
	at := time.Now().UTC()
	return &tradeunit.DirectoryEntry{
		Key:   tradeunit.MerchantKey{Mchid: "1900000001", Kind: tradeunit.KeyOrder, Value: fmt.Sprintf("k-%d-%08d", os.Getpid(), n)},
		State: tradeunit.EntryPending, Attempt: tradeunit.Attempt{Unit: unit, ID: n}, Fingerprint: "fp",
		Created: at, Updated: at, Version: 1,
	}
}
