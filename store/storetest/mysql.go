package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"tradeunit/store/sqlstore"
)

// MySQLServerDSN returns the go-sql-driver DSN (no database) of the MariaDB or
// MySQL server tests use: $TRADEUNIT_TEST_MYSQL, default root on
// 127.0.0.1:3306. If the server does not answer the test is skipped, except
// under CI=true, where a missing server fails the run.
func MySQLServerDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("TRADEUNIT_TEST_MYSQL")
	if dsn == "" {
		dsn = sqlstore.LocalMySQL
	}
	db, err := sql.Open("mysql", dsn)
	if err == nil {
		err = db.Ping()
		db.Close()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("MariaDB at %s is required under CI=true: %v", dsn, err)
		}
		tb.Skipf("MariaDB at %s not reachable (set TRADEUNIT_TEST_MYSQL): %v", dsn, err)
	}
	return dsn
}

// NewMySQLDatabase returns a "mysql:" storage DSN naming a fresh database on
// the test server, dropped when the test ends.
func NewMySQLDatabase(tb testing.TB) string {
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
	return "mysql:" + cfg.FormatDSN()
}
