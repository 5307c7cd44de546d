package directory

import (
	"context"
	"fmt"

	"tradeunit"
	"tradeunit/routing"
)

// Owned is a shard's store as its service serves it: a key whose bucket
// the routing table gives to another shard, or freezes for a move (admin
// directory move), is refused with UNIT_UNAVAILABLE (nothing read or
// written; retry). A proxy whose table is behind — cut off from etcd while
// a move switched buckets — is thus refused by the shard that no longer
// holds the key, instead of reading or writing a stale copy of its entry.
// Abandoned is not filtered: the reconciler checks each entry itself.
type Owned struct {
	tradeunit.DirectoryStore
	shard  routing.ShardID
	routes routing.Source
}

var _ tradeunit.DirectoryStore = (*Owned)(nil)

// NewOwned returns store served as shard's, by the routing table routes.
func NewOwned(store tradeunit.DirectoryStore, shard routing.ShardID, routes routing.Source) *Owned {
	return &Owned{DirectoryStore: store, shard: shard, routes: routes}
}

// Entry implements tradeunit.DirectoryStore.
func (o *Owned) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	if err := refusal(o.routes.Current(), o.shard, key); err != nil {
		return nil, err
	}
	return o.DirectoryStore.Entry(ctx, key)
}

// Put implements tradeunit.DirectoryStore: the entries of keys the shard
// does not hold are refused, the others put.
func (o *Owned) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	out := make([]tradeunit.PutResult, len(entries))
	var held []*tradeunit.DirectoryEntry
	var at []int
	for i, e := range entries {
		if err := refusal(o.routes.Current(), o.shard, e.Key); err != nil {
			out[i].Err = err
			continue
		}
		held, at = append(held, e), append(at, i)
	}
	if len(held) > 0 {
		for j, r := range o.DirectoryStore.Put(ctx, held) {
			out[at[j]] = r
		}
	}
	return out
}

// refusal is the error for a key that shard does not hold in table t, or
// whose bucket t freezes; nil if it holds it.
func refusal(t *routing.Table, shard routing.ShardID, key tradeunit.MerchantKey) error {
	s, frozen := t.Directory.ShardOf(key.Bucket())
	switch {
	case s == nil || s.Shard != shard:
		return tradeunit.Unavailable("directory.Owned", fmt.Sprintf("directory shard %d does not hold bucket %d (it moved, or the caller's routing table is behind); retry", shard, key.Bucket()), nil)
	case frozen:
		return tradeunit.Unavailable("directory.Owned", fmt.Sprintf("bucket %d is being moved to another shard; retry in a moment", key.Bucket()), nil)
	}
	return nil
}
