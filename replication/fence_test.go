package replication_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit/replication"
)

// errReadOnly is ER_OPTION_PREVENTS_STATEMENT: "The MariaDB server is
// running with the --read-only option".
const errReadOnly = 1290

// TestFence: after Fence, the application user cannot write (read-only
// error), its open transaction is gone, root sees read_only, the replicas
// keep replicating; a second Fence is a no-op; Promote makes it writable
// again.
func TestFence(t *testing.T) {
	p, rs := topo(t)
	tbl := table(t, p)
	db := appDB(t, p)
	if err := insert(db, tbl, 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// An application transaction that has written and not committed.
	open, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Exec("INSERT INTO " + tbl + " (id) VALUES (2)"); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	if err := replication.Fence(ctxTimeout(t, 10*time.Second), p.RootDSN()); err != nil {
		t.Fatal(err)
	}
	t.Logf("fence took %v", time.Since(t0).Round(time.Microsecond))
	if err := open.Commit(); err == nil {
		t.Error("a transaction open across the fence committed")
	}
	err = insert(db, tbl, 3, 5*time.Second)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != errReadOnly {
		t.Errorf("application insert after fence: got %v, want error %d (read-only)", err, errReadOnly)
	}
	st := inspect(t, p)
	if !st.ReadOnly || st.Role() != replication.RoleFenced || st.SemiSync.Clients != 2 {
		t.Errorf("fenced %s: read_only %v, role %s, %d semi-sync clients; want read-only, fenced, replicas still connected",
			p.Name, st.ReadOnly, st.Role(), st.SemiSync.Clients)
	}
	if err := replication.Fence(ctxTimeout(t, 10*time.Second), p.RootDSN()); err != nil {
		t.Errorf("second fence: %v", err)
	}
	if got := ids(t, p, tbl); !got[1] || got[2] || got[3] {
		t.Errorf("rows on the fenced primary: got %v, want only 1", got)
	}

	if err := replication.Promote(ctxTimeout(t, 10*time.Second), p.RootDSN()); err != nil {
		t.Fatal(err)
	}
	if err := insert(db, tbl, 4, 5*time.Second); err != nil {
		t.Errorf("application insert after promote: %v", err)
	}
	caughtUp(t, p, rs...)
}

// TestFenceReleasesWaitingCommit: on a primary whose replicas hang, a
// commit waits for an acknowledgement, and SET GLOBAL read_only alone would
// wait behind it; Fence still fences, at once, by killing the waiting
// connection. The killed commit stays committed on the primary (it was in
// the binlog): its client got an error, never an acknowledgement.
func TestFenceReleasesWaitingCommit(t *testing.T) {
	p, rs := topo(t)
	tbl := table(t, p)
	db := appDB(t, p)
	for _, r := range rs {
		if err := r.Pause(); err != nil {
			t.Fatal(err)
		}
		defer r.Resume()
	}
	done := make(chan error, 1)
	go func() { done <- insert(db, tbl, 1, time.Minute) }()
	eventually(t, 5*time.Second, "a commit waiting for an acknowledgement", func() bool {
		return inspect(t, p).SemiSync.WaitSessions > 0
	})

	t0 := time.Now()
	if err := replication.Fence(ctxTimeout(t, 10*time.Second), p.RootDSN()); err != nil {
		t.Fatal(err)
	}
	t.Logf("fence with a commit waiting for an acknowledgement took %v", time.Since(t0).Round(time.Millisecond))
	select {
	case err := <-done:
		if err == nil {
			t.Error("the waiting commit was acknowledged to its client with both replicas paused")
		}
	case <-time.After(5 * time.Second):
		t.Error("the waiting commit is still waiting after the fence")
	}
	if !inspect(t, p).ReadOnly {
		t.Error("not read-only after fence")
	}
	t.Logf("the killed commit is on the fenced primary: %v (it is in the binlog; it would be errant if no replica got it)", ids(t, p, tbl)[1])

	for _, r := range rs {
		if err := r.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	if err := replication.Promote(ctxTimeout(t, 10*time.Second), p.RootDSN()); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, p, rs...)
}

// TestUnreachable: operations on a paused server or a closed port fail
// within their context with an error wrapping ErrUnreachable.
func TestUnreachable(t *testing.T) {
	_, rs := topo(t)
	if err := rs[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer rs[0].Resume()
	closed := "root@tcp(127.0.0.1:1)/"
	for _, dsn := range []string{rs[0].RootDSN(), closed} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		t0 := time.Now()
		err := replication.Fence(ctx, dsn)
		cancel()
		if !errors.Is(err, replication.ErrUnreachable) {
			t.Errorf("Fence(%s): got %v, want ErrUnreachable", dsn, err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("Fence(%s) took %v with a 500ms context", dsn, d)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err = replication.Inspect(ctx, dsn)
		cancel()
		if !errors.Is(err, replication.ErrUnreachable) {
			t.Errorf("Inspect(%s): got %v, want ErrUnreachable", dsn, err)
		}
	}
}
