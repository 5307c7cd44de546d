package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"tradeunit/dsn"
	"tradeunit/secrets"
	"tradeunit/store/sqlstore"
)

// MySQLServerDSN returns the go-sql-driver DSN (no database) of the MariaDB or
// MySQL server tests use: $TRADEUNIT_TEST_MYSQL, default root on
// 127.0.0.1:3306 (a storage DSN, its password from the environment: see
// package secrets). If the server does not answer the test is skipped,
// except under CI=true, where a missing server fails the run.
func MySQLServerDSN(tb testing.TB) string {
	tb.Helper()
	server := sqlstore.LocalMySQL
	if s := os.Getenv("TRADEUNIT_TEST_MYSQL"); s != "" {
		var err error
		if server, err = dsn.Parse(s); err != nil {
			tb.Fatalf("TRADEUNIT_TEST_MYSQL: %v", err)
		}
	}
	cfg, err := server.MySQLConfig(secrets.FromEnv(os.Getenv))
	if err != nil {
		tb.Fatal(err)
	}
	dsn := cfg.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err == nil {
		err = db.Ping()
		db.Close()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("MariaDB at %s is required under CI=true: %v", server, err)
		}
		tb.Skipf("MariaDB at %s not reachable (set TRADEUNIT_TEST_MYSQL): %v", server, err)
	}
	return dsn
}

// NewMySQLDatabase returns a storage DSN naming a fresh database on the test
// server, dropped when the test ends. Its password, if any, comes from the
// environment (TestPasswords).
func NewMySQLDatabase(tb testing.TB) dsn.DSN {
	tb.Helper()
	server := MySQLServerDSN(tb)
	cfg, err := mysql.ParseDSN(server)
	if err != nil {
		tb.Fatalf("parse %s: %v", server, err)
	}
	var b [6]byte
	rand.Read(b[:])
	cfg.DBName = "tradeunit_test_" + strings.ToLower(hex.EncodeToString(b[:]))
	tb.Cleanup(func() {
		admin, err := sql.Open("mysql", server)
		if err != nil {
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + cfg.DBName); err != nil {
			tb.Logf("drop test database %s: %v", cfg.DBName, err)
		}
	})
	return dsn.MustParse("mysql:" + cfg.User + "@tcp(" + cfg.Addr + ")/" + cfg.DBName)
}

// TestPasswords knows the passwords of the test server's users: those of
// the environment (TRADEUNIT_PASSWORD_<USER>, see package secrets).
func TestPasswords() dsn.Passwords { return secrets.FromEnv(os.Getenv) }
