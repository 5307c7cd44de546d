package routing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/internal/etcdtest"
	"tradeunit/routing"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// etcdOptions are the default options, quiet, with another check interval.
// It connects as an operator of c.
func etcdOptions(c *etcdtest.Cluster, check time.Duration) routing.Options {
	o := routing.DefaultOptions()
	o.CheckInterval, o.Logger, o.TLS = check, quiet(), c.Admin()
	return o
}

func sampleTable() *routing.Table {
	t := &routing.Table{Revision: 1}
	for i := 1; i <= 3; i++ {
		t.Units = append(t.Units, routing.Unit{ID: tradeunit.UnitID(i), LogicAddrs: []string{fmt.Sprintf("127.0.0.1:%d", 9100+i)},
			Available: true, AcceptNew: true})
	}
	return t
}

func openEtcd(t *testing.T, c *etcdtest.Cluster, spec string) *routing.TableEtcd {
	t.Helper()
	e, err := routing.OpenEtcd(context.Background(), spec, etcdOptions(c, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEtcdInitOpenAndHistory(t *testing.T) {
	c := etcdtest.Start(t, 1)
	spec := c.Spec("/t1")
	ctx := context.Background()
	if _, err := routing.OpenEtcd(ctx, spec, etcdOptions(c, 500*time.Millisecond)); !errors.Is(err, routing.ErrNoTable) {
		t.Fatalf("open before init: got %v, want ErrNoTable", err)
	}
	if err := routing.InitEtcd(ctx, spec, c.Admin(), sampleTable(), routing.Change{Who: "test", What: "init"}); err != nil {
		t.Fatal(err)
	}
	if err := routing.InitEtcd(ctx, spec, c.Admin(), sampleTable(), routing.Change{Who: "test", What: "init"}); err == nil {
		t.Fatal("second init: got nil error, want one")
	}
	e := openEtcd(t, c, spec)
	if got := len(e.Current().Units); got != 3 {
		t.Fatalf("got %d units, want 3", got)
	}
	if _, err := e.Update(ctx, routing.Change{Who: "alice", What: "drain 2"}, func(t *routing.Table) error {
		u, _ := t.Unit(2)
		u.AcceptNew = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h, err := e.History(ctx, 10)
	if err != nil || len(h) != 2 || h[0].Who != "alice" || h[0].What != "drain 2" || h[0].Revision != 2 || h[1].What != "init" {
		t.Fatalf("history %+v, %v", h, err)
	}
	// A change that fails validation writes nothing.
	_, err = e.Update(ctx, routing.Change{Who: "bob"}, func(t *routing.Table) error {
		t.Units = append(t.Units, t.Units[0]) // duplicate unit number
		return nil
	})
	if tradeunit.ErrorCode(err) != tradeunit.CodeParamError {
		t.Fatalf("invalid update: got %v, want PARAM_ERROR", err)
	}
	if h, _ := e.History(ctx, 10); len(h) != 2 {
		t.Fatalf("history after a refused update has %d entries, want 2", len(h))
	}
}

// TestEtcdConcurrentUpdatesNeverLoseOne: two editors changing one unit at
// once both land, each on the other's result.
func TestEtcdConcurrentUpdatesNeverLoseOne(t *testing.T) {
	c := etcdtest.Start(t, 1)
	spec := c.Spec("/t2")
	ctx := context.Background()
	if err := routing.InitEtcd(ctx, spec, c.Admin(), sampleTable(), routing.Change{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	a, b := openEtcd(t, c, spec), openEtcd(t, c, spec)
	var wg sync.WaitGroup
	for i, e := range []*routing.TableEtcd{a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Update(ctx, routing.Change{Who: fmt.Sprint("op", i)}, func(t *routing.Table) error {
				u, _ := t.Unit(1)
				if u.Labels == nil {
					u.Labels = map[string]string{}
				}
				u.Labels[fmt.Sprint("k", i)] = "v"
				return nil
			})
			if err != nil && !errors.Is(err, routing.ErrConflict) {
				t.Errorf("update %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := openEtcd(t, c, spec)
	u, _ := got.Current().Unit(1)
	h, _ := got.History(ctx, 100)
	// Every update that did not report a conflict is in the table.
	if len(u.Labels) != len(h)-1 || got.Current().Revision != int64(len(h)) {
		t.Fatalf("labels %v after %d recorded changes at revision %d: an update was lost", u.Labels, len(h)-1, got.Current().Revision)
	}
	if len(u.Labels) < 2 {
		t.Fatalf("only %d of 6 concurrent updates landed", len(u.Labels))
	}
}

// TestEtcdReadersFollowChangesAndSurviveLoss: a reader sees a change within
// a second, keeps its table while etcd is down, and resyncs when it returns.
func TestEtcdReadersFollowChangesAndSurviveLoss(t *testing.T) {
	c := etcdtest.Start(t, 1)
	spec := c.Spec("/t3")
	ctx := context.Background()
	if err := routing.InitEtcd(ctx, spec, c.Admin(), sampleTable(), routing.Change{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	reader, writer := openEtcd(t, c, spec), openEtcd(t, c, spec)
	changes := reader.Watch(ctx)
	<-changes // the current table

	start := time.Now()
	if _, err := writer.Update(ctx, routing.Change{Who: "op"}, func(t *routing.Table) error {
		u, _ := t.Unit(3)
		u.Available = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case tb := <-changes:
		if u, _ := tb.Unit(3); u.Available {
			t.Fatal("change not in the published table")
		}
		t.Logf("reader saw the change after %v", time.Since(start))
		if d := time.Since(start); d > time.Second {
			t.Fatalf("reader saw the change after %v, want within 1s", d)
		}
	case <-time.After(time.Second):
		t.Fatal("reader did not see the change within 1s")
	}

	c.Members[0].Kill()
	waitUntil(t, 3*time.Second, "reader notices etcd is gone", reader.Stale)
	if u, ok := reader.Current().Unit(3); !ok || u.Available {
		t.Fatal("reader lost its last good table while etcd was down")
	}
	c.Members[0].Start()
	waitUntil(t, 10*time.Second, "reader notices etcd is back", func() bool { return !reader.Stale() })
	if _, err := writer.Update(ctx, routing.Change{Who: "op"}, func(t *routing.Table) error {
		u, _ := t.Unit(3)
		u.Available = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Second, "reader sees a change made after etcd returned", func() bool {
		u, _ := reader.Current().Unit(3)
		return u.Available
	})
}

// TestEtcdClusterSurvivesLosingOneMember: with three members, one killed,
// the table stays readable and writable.
func TestEtcdClusterSurvivesLosingOneMember(t *testing.T) {
	c := etcdtest.Start(t, 3)
	spec := c.Spec("/t4")
	ctx := context.Background()
	if err := routing.InitEtcd(ctx, spec, c.Admin(), sampleTable(), routing.Change{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	e := openEtcd(t, c, spec)
	c.Members[0].Kill()
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.Update(uctx, routing.Change{Who: "op", What: "after losing a member"}, func(t *routing.Table) error {
		u, _ := t.Unit(1)
		u.Weight = 2
		return nil
	}); err != nil {
		t.Fatalf("write with one member of three down: %v", err)
	}
	fresh := openEtcd(t, c, spec)
	if u, _ := fresh.Current().Unit(1); u.Weight != 2 {
		t.Fatalf("read with one member down: weight %v, want 2", u.Weight)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}
