package querytest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// LocalPostgres is the server of a development machine or CI: user postgres
// with trust authentication on the loopback port, its maintenance database.
const LocalPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NewPostgresDatabase creates a fresh database on the test server
// ($TRADEUNIT_TEST_POSTGRES, default LocalPostgres: a URL naming a database
// to connect to for CREATE DATABASE) and returns its URL; it is dropped
// when the test ends. If the server does not answer the test is skipped,
// except under CI=true, where a missing server fails the run.
func NewPostgresDatabase(tb testing.TB) string {
	tb.Helper()
	server := LocalPostgres
	if s := os.Getenv("TRADEUNIT_TEST_POSTGRES"); s != "" {
		server = s
	}
	admin, err := sql.Open("pgx", server)
	if err == nil {
		if err = admin.Ping(); err != nil {
			admin.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at %s is required under CI=true: %v", server, err)
		}
		tb.Skipf("PostgreSQL at %s not reachable (set TRADEUNIT_TEST_POSTGRES): %v", server, err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "tradeunit_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		tb.Fatalf("create test database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		// WITH (FORCE): a pool the test left open must not keep it.
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("TRADEUNIT_TEST_POSTGRES %q: %v", server, err)
	}
	u.Path = "/" + name
	return u.String()
}
