package replicated_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/store/replicated"
	"tradeunit/store/sqlstore"
)

// TestSwitchToColdCopyKeepsServingReads: when the topology points a unit
// at its cold copy, the old primary serves every read until the copy is
// open (make before break), and the storage says it is cold; reads never
// fail during the switch, and once it is made they come from the copy.
func TestSwitchToColdCopyKeepsServingReads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, cold := dsn.MustParse("sqlite:"+filepath.Join(dir, "old.db")), dsn.MustParse("sqlite:"+filepath.Join(dir, "cold.db"))
	orderOn := func(d dsn.DSN, out string) string {
		s, err := sqlstore.Open(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.BindUnit(ctx, 1); err != nil {
			t.Fatal(err)
		}
		no := "100001" + out
		o := &tradeunit.Order{OrderNo: no, Mchid: "1900000001", OutTradeNo: out, Description: "d",
			Amount: tradeunit.Amount{Total: 1, Currency: "CNY"}, CreateTime: time.Now().UTC().Truncate(time.Microsecond)}
		if _, _, err := s.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		return no
	}
	// Both hold the same order; only the copy holds the one made after.
	shared, onCopy := orderOn(old, "shared-order"), orderOn(cold, "shared-order")
	if shared != onCopy {
		t.Fatal("test orders differ")
	}
	copyOnly := orderOn(cold, "copy-only-order")

	topology := make(chan replicated.Topology, 1)
	st, err := replicated.OpenUnit(replicated.DefaultConfig(), 1, replicated.Deps{Topology: topology,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	topology <- replicated.Topology{Revision: 1, Primary: old}
	read := func(no string) error {
		readers, err := st.Readers(tradeunit.RealTime)
		if err != nil {
			return err
		}
		_, err = readers[0].Store.Order(ctx, no)
		return err
	}
	waitUntil(t, "the old primary open", func() bool { return read(shared) == nil })

	var failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if read(shared) != nil {
				failed.Add(1)
			}
		}
	}()
	topology <- replicated.Topology{Revision: 2, Primary: cold, Cold: true}
	waitUntil(t, "reads from the cold copy", func() bool { return read(copyOnly) == nil })
	close(stop)
	<-done
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d reads failed during the switch to the cold copy", n)
	}
	if !st.Cold() {
		t.Fatal("the storage does not say it is cold")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// TestWaitOpen: once WaitOpen returns, the primary's first opening has
// ended: changes are taken at once, never "still opening".
func TestWaitOpen(t *testing.T) {
	topology := make(chan replicated.Topology, 1)
	st, err := replicated.OpenUnit(replicated.DefaultConfig(), 1, replicated.Deps{Topology: topology,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// No topology yet: nothing says whether there is a primary to open.
	early, cancelEarly := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelEarly()
	if err := st.WaitOpen(early); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitOpen before any topology: %v, want it to wait", err)
	}
	// The topology is taken in the background; WaitOpen waits for it,
	// then for the opening of its primary.
	topology <- replicated.Topology{Revision: 1, Primary: dsn.MustParse("sqlite:" + filepath.Join(t.TempDir(), "u.db"))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Primary(); err != nil {
		t.Fatalf("after WaitOpen: %v", err)
	}
}
