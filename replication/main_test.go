package replication_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

// set is the one replicated set of three MariaDB servers the tests share,
// started by TestMain on free loopback ports. Tests run one after another
// and leave it healthy (one primary, two acknowledging replicas), though
// not necessarily with the same primary: each finds the current topology
// with topo.
var (
	set    *localdb.Set
	setErr error
)

// testDB is the database the tests write in, as the application user.
const testDB = "tradeunit_rt"

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// Killed connections are the point of several tests: keep the
	// driver's "unexpected EOF" notes out of the output.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	if setErr = localdb.Available(); setErr != nil {
		return m.Run() // the tests that need the set skip (or fail under CI)
	}
	dir, err := os.MkdirTemp("", "tradeunit-replication-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t0 := time.Now()
	set, setErr = localdb.Start(ctx, localdb.DefaultConfig(dir))
	cancel()
	if setErr == nil {
		fmt.Fprintf(os.Stderr, "replication tests: 3 MariaDB instances up in %v (ports %d, %d, %d)\n",
			time.Since(t0).Round(time.Millisecond), set.Instances[0].Port, set.Instances[1].Port, set.Instances[2].Port)
		defer set.Close()
	}
	return m.Run()
}

// needSet returns the shared set; it skips the test when the MariaDB
// binaries are missing (failing under CI=true), and fails it when the set
// did not start.
func needSet(t *testing.T) *localdb.Set {
	t.Helper()
	if set != nil {
		return set
	}
	if errors.Is(setErr, localdb.ErrNoMariaDB) && os.Getenv("CI") != "true" {
		t.Skip(setErr)
	}
	t.Fatalf("no replicated MariaDB set: %v", setErr)
	return nil
}

// topo waits until the set is healthy (one writable primary whose every
// other instance replicates from it and acknowledges) and returns it.
func topo(t *testing.T) (primary *localdb.Instance, replicas []*localdb.Instance) {
	t.Helper()
	s := needSet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		primary, replicas, last = healthy(ctx, s)
		if last == nil {
			return primary, replicas
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the set is not healthy: %v", last)
	return nil, nil
}

func healthy(ctx context.Context, s *localdb.Set) (*localdb.Instance, []*localdb.Instance, error) {
	p, err := s.Primary(ctx)
	if err != nil {
		return nil, nil, err
	}
	var replicas []*localdb.Instance
	for _, in := range s.Instances {
		if in == p {
			continue
		}
		st, err := replication.Inspect(ctx, in.RootDSN())
		if err != nil {
			return nil, nil, err
		}
		if st.Replica == nil || !st.Replica.Receiving() || !st.Replica.SQLRunning || st.Replica.SourcePort != p.Port {
			return nil, nil, fmt.Errorf("%s is not replicating from %s: %+v", in.Name, p.Name, st.Replica)
		}
		replicas = append(replicas, in)
	}
	st, err := replication.Inspect(ctx, p.RootDSN())
	if err != nil {
		return nil, nil, err
	}
	if st.SemiSync.Clients != len(replicas) || !st.Acknowledged() {
		return nil, nil, fmt.Errorf("%s has %d semi-sync clients, want %d", p.Name, st.SemiSync.Clients, len(replicas))
	}
	return p, replicas, nil
}

// table creates a table of the test's own in testDB on the primary, as the
// application user, and returns its qualified name.
func table(t *testing.T, primary *localdb.Instance) string {
	t.Helper()
	name := testDB + "." + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	db := appDB(t, primary)
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + testDB,
		"CREATE TABLE IF NOT EXISTS " + name + " (id BIGINT PRIMARY KEY, note VARCHAR(32) NOT NULL DEFAULT '')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return name
}

// appDB is a pool of the application user on in, closed when the test ends.
func appDB(t *testing.T, in *localdb.Instance) *sql.DB {
	t.Helper()
	return openDB(t, in.AppDSN(""))
}

// rootDB is a pool of root on in, closed when the test ends.
func rootDB(t *testing.T, in *localdb.Instance) *sql.DB {
	t.Helper()
	return openDB(t, in.RootDSN())
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// insert inserts row id into table, bounded by timeout.
func insert(db *sql.DB, table string, id int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := db.ExecContext(ctx, "INSERT INTO "+table+" (id) VALUES (?)", id)
	return err
}

// ids returns the ids of table on in, read as root.
func ids(t *testing.T, in *localdb.Instance, table string) map[int64]bool {
	t.Helper()
	db := rootDB(t, in)
	rows, err := db.Query("SELECT id FROM " + table)
	if err != nil {
		t.Fatalf("%s: %v", in.Name, err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// inspect is replication.Inspect that fails the test on error.
func inspect(t *testing.T, in *localdb.Instance) replication.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := replication.Inspect(ctx, in.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// caughtUp waits until every replica has applied the primary's binlog.
func caughtUp(t *testing.T, primary *localdb.Instance, replicas ...*localdb.Instance) {
	t.Helper()
	pos := inspect(t, primary).BinlogPos
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, r := range replicas {
		if err := replication.WaitFor(ctx, r.RootDSN(), pos); err != nil {
			t.Fatalf("%s catching up with %s at %s: %v", r.Name, primary.Name, pos, err)
		}
	}
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
