package proxy

import (
	"maps"
	"slices"
	"testing"

	"tradeunit/routing"
)

// keepDialer records what Retain was asked to keep.
type keepDialer struct {
	fakeDialer
	kept []string
}

func (d *keepDialer) Retain(keep map[string]bool) []string {
	d.kept = slices.Sorted(maps.Keys(keep))
	return nil
}

// TestRetainKeepsShards: a change of the routing table closes only the
// connections of replicas that left it: the directory shards' stay, or
// every create in flight would lose its shard at each table change.
func TestRetainKeepsShards(t *testing.T) {
	d := &keepDialer{}
	p := &Proxy{dialer: d, log: discardLogger()}
	p.retainClients(&routing.Table{
		Units: []routing.Unit{{ID: 1, LogicAddrs: []string{"10.0.0.1:9000", "10.0.0.2:9000"}}},
		Directory: &routing.Directory{Shards: []routing.DirectoryShard{
			{Shard: 1, LogicAddrs: []string{"10.0.9.1:9000"}}, {Shard: 2, LogicAddrs: []string{"10.0.9.2:9000"}}}},
	})
	want := []string{"10.0.0.1:9000", "10.0.0.2:9000", "10.0.9.1:9000", "10.0.9.2:9000"}
	if !slices.Equal(d.kept, want) {
		t.Fatalf("kept %v, want %v", d.kept, want)
	}
}
