package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"

	"tradeunit/store/storetest"
)

// TestMySQLKeysAreBinary: on a database an operator created with a
// case-insensitive default, every text column of the unit's data is still
// compared bytewise (Sync's ranges need it, and keys are case-sensitive).
func TestMySQLKeysAreBinary(t *testing.T) {
	d := storetest.NewMySQLDatabase(t)
	admin, err := sql.Open("mysql", storetest.MySQLServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cfg, err := d.MySQLConfig(storetest.TestPasswords())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + cfg.DBName + " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		t.Fatal(err)
	}
	openStore(t, d)
	rows, err := admin.QueryContext(context.Background(),
		"SELECT table_name, column_name, collation_name FROM information_schema.columns WHERE table_schema = ? AND collation_name IS NOT NULL",
		cfg.DBName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table, column, collation string
		if err := rows.Scan(&table, &column, &collation); err != nil {
			t.Fatal(err)
		}
		n++
		if collation != "utf8mb4_bin" && table != "schema_migrations" {
			t.Errorf("%s.%s: collation %s, want utf8mb4_bin", table, column, collation)
		}
	}
	if err := rows.Err(); err != nil || n == 0 {
		t.Fatalf("read collations: %d columns, %v", n, err)
	}
}
