package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
)

func opener(d dsn.DSN) storetest.Opener {
	return func(t *testing.T) tradeunit.Store {
		t.Helper()
		s, err := sqlstore.Open(context.Background(), d, storetest.TestPasswords())
		if err != nil {
			t.Fatalf("open %s: %v", d, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		return opener(dsn.MustParse("sqlite:" + filepath.Join(t.TempDir(), "unit.db")))
	})
}

func TestMySQLConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		return opener(storetest.NewMySQLDatabase(t))
	})
}

// sqliteRaw is a fresh SQLite storage with a way beneath its Store.
func sqliteRaw(t *testing.T) storetest.RawStorage {
	path := filepath.Join(t.TempDir(), "unit.db")
	return storetest.RawStorage{
		Open: opener(dsn.MustParse("sqlite:" + path)),
		DB: func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		OneWriter: true,
		Dialect:   "sqlite",
	}
}

// mysqlRaw is a fresh MariaDB storage with a way beneath its Store.
func mysqlRaw(t *testing.T) storetest.RawStorage {
	d := storetest.NewMySQLDatabase(t)
	return storetest.RawStorage{
		Open: opener(d),
		DB: func(t *testing.T) *sql.DB {
			cfg, err := d.MySQLConfig(storetest.TestPasswords())
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("mysql", cfg.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		Dialect: "mysql",
	}
}

func TestSQLiteOutboxGaps(t *testing.T) { storetest.RunGaps(t, sqliteRaw) }

func TestMySQLOutboxGaps(t *testing.T) { storetest.RunGaps(t, mysqlRaw) }

func TestSQLiteChangeBatchFaults(t *testing.T) { storetest.RunChangeBatchFaults(t, sqliteRaw) }

func TestMySQLChangeBatchFaults(t *testing.T) { storetest.RunChangeBatchFaults(t, mysqlRaw) }

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, d := range []dsn.DSN{{}, sqlstore.LocalMySQL} {
		if _, err := sqlstore.Open(context.Background(), d, nil); err == nil {
			t.Errorf("Open(%q): got nil error, want one", d)
		}
	}
}

// TestOpenReadOnlyChangesNothing: opening a storage to read it creates no
// file and no database, and migrates nothing.
func TestOpenReadOnlyChangesNothing(t *testing.T) {
	missing := dsn.MustParse("sqlite:" + filepath.Join(t.TempDir(), "missing.db"))
	if _, err := sqlstore.OpenReadOnly(context.Background(), missing, nil); err == nil {
		t.Error("OpenReadOnly of a missing SQLite file succeeded")
	}
	if _, err := os.Stat(missing.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s: %v", missing.Path, err)
	}
}
