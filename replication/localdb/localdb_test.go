package localdb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

// needMariaDB skips the test when the MariaDB binaries are missing, except
// under CI=true, where that fails it.
func needMariaDB(t *testing.T) {
	t.Helper()
	if err := localdb.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MariaDB binaries are required under CI=true: %v", err)
		}
		t.Skip(err)
	}
}

// TestStartResume starts a two-instance set, writes through the
// application user, closes it, starts it again from the same directory,
// and finds the same primary, the replica replicating, and the row.
func TestStartResume(t *testing.T) {
	needMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	t0 := time.Now()
	cfg := localdb.DefaultConfig(dir)
	cfg.Instances = 2
	set, err := localdb.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a new 2-instance set started in %v", time.Since(t0).Round(time.Millisecond))
	defer set.Close()
	p, r := set.Instances[0], set.Instances[1]
	roles(ctx, t, map[*localdb.Instance]replication.Role{p: replication.RolePrimary, r: replication.RoleReplica})

	exec(t, p.AppDSN(""), "CREATE DATABASE tradeunit_localdb", "CREATE TABLE tradeunit_localdb.t (id INT PRIMARY KEY)",
		"INSERT INTO tradeunit_localdb.t VALUES (1)")
	st, err := replication.Inspect(ctx, p.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := replication.WaitFor(ctx, r.RootDSN(), st.BinlogPos); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || r.Running() {
		t.Fatal("instances still running after Close")
	}

	t0 = time.Now()
	set, err = localdb.Start(ctx, localdb.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the set resumed in %v", time.Since(t0).Round(time.Millisecond))
	defer set.Close()
	p, r = set.Instance("db1"), set.Instance("db2")
	roles(ctx, t, map[*localdb.Instance]replication.Role{p: replication.RolePrimary, r: replication.RoleReplica})
	var n int
	if err := query(t, r.AppDSN("tradeunit_localdb"), "SELECT COUNT(*) FROM t", &n); err != nil || n != 1 {
		t.Fatalf("rows on the resumed replica: got %d (%v), want 1", n, err)
	}
	if err := query(t, p.AppDSN("tradeunit_localdb"), "SELECT @@global.rpl_semi_sync_master_timeout", &n); err != nil || n != 86400000 {
		t.Fatalf("semi-sync timeout: got %d (%v), want 86400000", n, err)
	}
}

// TestStartRefusesOneInstance: a lone semi-sync primary would block every
// commit.
func TestStartRefusesOneInstance(t *testing.T) {
	cfg := localdb.DefaultConfig(t.TempDir())
	cfg.Instances = 1
	_, err := localdb.Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "want 2 to 9") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if err := localdb.Available(); err != nil && !errors.Is(err, localdb.ErrNoMariaDB) {
		t.Fatalf("Available: got %v, want nil or ErrNoMariaDB", err)
	}
}

func roles(ctx context.Context, t *testing.T, want map[*localdb.Instance]replication.Role) {
	t.Helper()
	for in, role := range want {
		st, err := replication.Inspect(ctx, in.RootDSN())
		if err != nil {
			t.Fatal(err)
		}
		if st.Role() != role {
			t.Errorf("%s: got role %s, want %s", in.Name, st.Role(), role)
		}
	}
}

func exec(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func query(t *testing.T, dsn, q string, dst any) error {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRow(q).Scan(dst)
}
