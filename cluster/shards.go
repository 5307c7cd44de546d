package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/pki"
	"tradeunit/routing"
	"tradeunit/rpc"
)

// Shard is one directory shard of the cluster.
type Shard struct {
	ID       routing.ShardID
	DSN      dsn.DSN // its primary when it started
	Replicas []*Replica
}

// Addrs returns the addresses of the shard's replicas.
func (s *Shard) Addrs() []string {
	out := make([]string, len(s.Replicas))
	for i, r := range s.Replicas {
		out[i] = r.Addr()
	}
	return out
}

// shardsToStart is shards 1..n, or the shards of the previous table's
// directory: its buckets stay where they are.
func shardsToStart(n int, old *routing.Table) []routing.ShardID {
	var ids []routing.ShardID
	if old != nil && old.Directory != nil {
		for _, s := range old.Directory.Shards {
			ids = append(ids, s.Shard)
		}
		slices.Sort(ids)
		return ids
	}
	for i := 1; i <= n; i++ {
		ids = append(ids, routing.ShardID(i))
	}
	return ids
}

func (c *Cluster) shardStorage(id routing.ShardID) routing.Storage {
	if c.cfg.ShardStorage != nil {
		return c.cfg.ShardStorage(id)
	}
	return routing.Storage{Primary: dsn.MustParse("sqlite:" + filepath.Join(c.cfg.Dir, fmt.Sprintf("directory-%d.db", id)))}
}

// startShards starts the replicas of every shard of topology and returns
// the directory to publish: the previous table's bucket ranges (or an even
// split) with the new addresses. The routing table must exist: the
// shards' reconcilers follow it.
func (c *Cluster) startShards(ctx context.Context, spec string, ids []routing.ShardID, topology *routing.Topology, old *routing.Table) (*routing.Directory, error) {
	dir := routing.SplitBuckets(ids)
	if old != nil && old.Directory != nil {
		dir = &routing.Directory{Shards: slices.Clone(old.Directory.Shards)}
	}
	for i := range dir.Shards {
		ds := &dir.Shards[i]
		st, _ := topology.Shard(ds.Shard)
		s, err := c.startShard(ctx, ds.Shard, spec, st.Storage)
		if err != nil {
			return nil, err
		}
		ds.LogicAddrs = s.Addrs()
	}
	return dir, nil
}

// startShard starts the replicas of shard id over st: its one DSN, or,
// with replicas, following the storage topology at spec.
func (c *Cluster) startShard(ctx context.Context, id routing.ShardID, spec string, st routing.Storage) (*Shard, error) {
	s := &Shard{ID: id, DSN: st.Primary}
	c.mu.Lock()
	c.Shards = append(c.Shards, s)
	c.mu.Unlock()
	cfg := c.cfg.Directory
	cfg.Shard, cfg.Routes, cfg.DB = id, spec, st.Primary
	if len(st.Replicas) > 0 {
		cfg.DB = dsn.DSN{}
	}
	if c.cfg.UnitMetrics {
		cfg.Metrics = "127.0.0.1:0"
	}
	var err error
	if cfg.TLS, err = c.issue(pki.RoleDirectory, fmt.Sprintf("shard-%d", id)); err != nil {
		return nil, err
	}
	for r := 1; r <= c.cfg.ShardReplicas; r++ {
		rep := NewShardReplica(c.cfg.Binary, c.cfg.Dir, fmt.Sprintf("directory-%d-r%d", id, r), cfg)
		if err := rep.Start(ctx); err != nil {
			return nil, err
		}
		s.Replicas = append(s.Replicas, rep)
	}
	return s, nil
}

// Shard returns the directory shard with the given number.
func (c *Cluster) Shard(id routing.ShardID) *Shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.Shards {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Replicas returns every replica of the cluster: the units', then the
// shards'.
func (c *Cluster) Replicas() []*Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Replica
	for _, u := range c.Units {
		out = append(out, u.Replicas...)
	}
	for _, s := range c.Shards {
		out = append(out, s.Replicas...)
	}
	return out
}

// WaitHolding waits until every replica of every shard of d serves its
// buckets: a shard refuses the keys of buckets its routing table does not
// give it, and learns of a new directory within a reload of the table.
// opts are added to the dial options (the caller's certificate).
func WaitHolding(ctx context.Context, d *routing.Directory, opts ...grpc.DialOption) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, s := range d.Shards {
		key := keyIn(s.Buckets[0])
		for _, addr := range s.LogicAddrs {
			c, err := rpc.Dial(addr, opts...)
			if err != nil {
				return err
			}
			for {
				_, err = c.Entry(ctx, key)
				if err == nil || tradeunit.IsCode(err, tradeunit.CodeNotFound) {
					break
				}
				if ctx.Err() != nil {
					c.Close()
					return fmt.Errorf("directory shard %d at %s does not serve its buckets: %w", s.Shard, addr, err)
				}
				time.Sleep(20 * time.Millisecond) // poll: its table reloads on its own clock
			}
			c.Close()
		}
	}
	return nil
}

// keyIn returns a key of a bucket of r.
func keyIn(r routing.BucketRange) tradeunit.MerchantKey {
	k := tradeunit.MerchantKey{Mchid: "1900000000", Kind: tradeunit.KeyOrder}
	for i := 0; ; i++ {
		k.Value = fmt.Sprintf("cluster-ready-%d", i)
		if r.Contains(k.Bucket()) {
			return k
		}
	}
}
