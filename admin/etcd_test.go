package admin_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"tradeunit/admin"
	"tradeunit/internal/etcdtest"
	"tradeunit/routing"
)

// TestConcurrentUnitSetOnEtcd: two operators changing one unit at once on
// etcd: both changes survive, or one fails with a conflict; never a lost
// update.
func TestConcurrentUnitSetOnEtcd(t *testing.T) {
	ctx := context.Background()
	etcd := etcdtest.Start(t, 1)
	spec := etcd.Spec("/admin")
	opts := routing.DefaultOptions()
	opts.TLS = etcd.Admin()
	table := &routing.Table{Revision: 1, Units: []routing.Unit{{ID: 1, LogicAddrs: []string{"127.0.0.1:9001"},
		Available: true, AcceptNew: true}}}
	if err := routing.InitEtcd(ctx, spec, opts.TLS, table, routing.Change{Who: "test"}); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		var (
			wg   sync.WaitGroup
			errs = make([]error, 2)
		)
		for op := 0; op < 2; op++ {
			e, err := routing.OpenEtcd(ctx, spec, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			a := &admin.Admin{Routes: e, Who: fmt.Sprint("operator-", op)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[op] = a.SetUnit(ctx, 1, admin.UnitChanges{Labels: map[string]string{fmt.Sprintf("r%d-op%d", round, op): "x"}})
			}()
		}
		wg.Wait()
		e, err := routing.OpenEtcd(ctx, spec, opts)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := e.Current().Unit(1)
		for op, err := range errs {
			_, landed := u.Labels[fmt.Sprintf("r%d-op%d", round, op)]
			switch {
			case err == nil && !landed:
				t.Fatalf("round %d: operator %d was told its change landed, but it was lost", round, op)
			case err != nil && !errors.Is(err, routing.ErrConflict):
				t.Fatalf("round %d: operator %d: %v", round, op, err)
			case err != nil && landed:
				t.Fatalf("round %d: operator %d was told of a conflict, but its change landed", round, op)
			}
		}
		e.Close()
	}
}
