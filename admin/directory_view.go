package admin

import (
	"context"
	"time"

	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
)

// ShardView is one line of `tradeunit admin directory shards`: a
// directory shard as the routing table and the storage topology name it.
// It holds no password (DSNs never do).
type ShardView struct {
	Shard      routing.ShardID       `json:"shard"`
	Buckets    []routing.BucketRange `json:"buckets"`
	BucketN    int                   `json:"bucket_count"`
	Frozen     []routing.BucketRange `json:"frozen,omitempty"` // being moved to another shard
	Available  bool                  `json:"available"`
	LogicAddrs []string              `json:"logic_addrs"`
	Storage    dsn.DSN               `json:"storage,omitzero"` // its primary
	// Entries is how many entries its storage holds; -1 when not counted
	// (count false) or unreadable (Error says why).
	Entries int64  `json:"entries"`
	Error   string `json:"error,omitempty"`
}

// Shards lists the directory's shards. With count, it counts each shard's
// entries in its storage (a full count, opened read-only: it changes
// nothing, and costs a scan of the shard).
func (a *Admin) Shards(ctx context.Context, count bool) ([]ShardView, error) {
	d := a.Routes.Current().Directory
	if d == nil {
		return nil, paramErrorf("the routing table has no directory")
	}
	var out []ShardView
	for _, s := range d.Shards {
		v := ShardView{Shard: s.Shard, Buckets: s.Buckets, BucketN: bucketCount(s.Buckets), Frozen: s.Frozen,
			Available: s.Available, LogicAddrs: s.LogicAddrs, Entries: -1}
		if a.Topology != nil {
			if st, ok := a.Topology.Current().Shard(s.Shard); ok {
				v.Storage = st.Primary
			}
		}
		if count && v.Storage != (dsn.DSN{}) {
			if n, err := a.countShard(ctx, v.Storage); err != nil {
				v.Error = err.Error()
			} else {
				v.Entries = n
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (a *Admin) countShard(ctx context.Context, d dsn.DSN) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := dirstore.OpenReadOnly(ctx, d, a.Passwords)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Count(ctx)
}
