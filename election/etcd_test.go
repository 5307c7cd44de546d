package election_test

import (
	"context"
	"testing"
	"time"

	"tradeunit/election"
	"tradeunit/internal/etcdtest"
)

// TestEtcdElection: of two controllers of one etcd table, the second is
// elected only once the first resigns; a closed election's lease is gone.
func TestEtcdElection(t *testing.T) {
	c := etcdtest.Start(t, 1)
	spec := c.Spec("/election-test")
	elect := func(holder string) *election.Etcd {
		e, err := election.NewEtcd(spec, c.Admin(), 2*time.Second, holder, "/lifecycle-election")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, second := elect("one"), elect("two")
	if _, err := first.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	won := make(chan error, 1)
	go func() { _, err := second.Campaign(ctx); won <- err }()
	// The second campaign must still be waiting after a campaign
	// round-trip of its own has had time to reach etcd: a third
	// controller's attempt with a short deadline fails.
	short, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	if _, err := elect("three").Campaign(short); err == nil {
		t.Fatal("a third controller was elected while the first is active")
	}
	select {
	case err := <-won:
		t.Fatalf("the second controller was elected (%v) while the first is active", err)
	default:
	}
	if err := first.Resign(); err != nil {
		t.Fatal(err)
	}
	if err := <-won; err != nil {
		t.Fatalf("second campaign: %v", err)
	}
}
