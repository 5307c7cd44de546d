package localdb_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"strconv"
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

// TestPlaces places a two-instance set off 127.0.0.1 (other loopback
// addresses, so that no network namespace is needed), the replica under a
// command prefix, with accounts for the whole 127.0.0.0/8: each server
// binds its own address, the replica replicates from the primary's, and
// the application user connects to both. A set resumed from the same
// directory keeps the places. e2e's rooms tests place sets in network
// namespaces.
func TestPlaces(t *testing.T) {
	needMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := localdb.DefaultConfig(dir)
	cfg.Instances, cfg.UserHost = 2, "127.%"
	cfg.Places = []localdb.Place{{Host: "127.0.0.2"}, {Host: "127.0.0.3", Prefix: []string{"env"}}}
	check := func(set *localdb.Set) {
		t.Helper()
		p, r := set.Instance("db1"), set.Instance("db2")
		if p.Host != "127.0.0.2" || r.Host != "127.0.0.3" {
			t.Fatalf("hosts: got %s and %s, want 127.0.0.2 and 127.0.0.3", p.Host, r.Host)
		}
		roles(ctx, t, map[*localdb.Instance]replication.Role{p: replication.RolePrimary, r: replication.RoleReplica})
		var bind string
		if err := query(t, r.AppDSN(""), "SELECT @@global.bind_address", &bind); err != nil || bind != r.Host {
			t.Fatalf("replica's bind_address: got %q (%v), want %s", bind, err, r.Host)
		}
		st, err := replication.Inspect(ctx, r.RootDSN())
		if err != nil {
			t.Fatal(err)
		}
		if st.Replica == nil || net.JoinHostPort(st.Replica.SourceHost, strconv.Itoa(st.Replica.SourcePort)) != p.Addr() {
			t.Fatalf("replica's source: got %+v, want %s", st.Replica, p.Addr())
		}
	}
	set, err := localdb.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	check(set)
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	set, err = localdb.Start(ctx, localdb.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	check(set)
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
