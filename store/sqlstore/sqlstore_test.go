package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"tradeunit"
	"tradeunit/store/sqlstore"
	"tradeunit/store/storetest"
)

func opener(dsn string) storetest.Opener {
	return func(t *testing.T) tradeunit.Store {
		t.Helper()
		s, err := sqlstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("open %s: %v", dsn, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		return opener("sqlite:" + filepath.Join(t.TempDir(), "unit.db"))
	})
}

func TestMySQLConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		return opener(storetest.NewMySQLDatabase(t))
	})
}

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "sqlite:", "postgres://x", "nocolon", "sqlite:x.db?synchronous=OFF", "mysql:root@tcp(127.0.0.1:3306)/"} {
		if _, err := sqlstore.Open(context.Background(), dsn); err == nil {
			t.Errorf("Open(%q): got nil error, want one", dsn)
		}
	}
}
