package query_test

import (
	"context"
	"path/filepath"
	"testing"

	"tradeunit/query"
	"tradeunit/query/querytest"
)

func openSQLite(t *testing.T) *query.Store {
	t.Helper()
	s, err := query.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "query.db"), query.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) *query.Store {
	t.Helper()
	s, err := query.Open(context.Background(), querytest.NewPostgresDatabase(t), query.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T)   { querytest.Run(t, openSQLite) }
func TestPostgres(t *testing.T) { querytest.Run(t, openPostgres) }
