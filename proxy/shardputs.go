package proxy

import (
	"context"
	"errors"
	"sync"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/routing"
)

// shardPuts sends the entry puts of concurrent creates to their directory
// shard together: one Put call for every put that arrived while the
// previous call was out, instead of one call each. The shard commits the
// whole call in one transaction with other proxies' (its own group commit),
// so a busy proxy's creates cost a share of two calls and two commits
// instead of two of each. Each put keeps its own result.
type shardPuts struct {
	p   *Proxy
	cfg batch.Config

	mu       sync.Mutex
	batchers map[routing.ShardID]*batch.Batcher[*tradeunit.DirectoryEntry, tradeunit.PutResult]
	closed   bool
}

func newShardPuts(p *Proxy, cfg batch.Config) *shardPuts {
	return &shardPuts{p: p, cfg: cfg, batchers: map[routing.ShardID]*batch.Batcher[*tradeunit.DirectoryEntry, tradeunit.PutResult]{}}
}

// put writes e on its shard, in the shard's next call.
func (sp *shardPuts) put(ctx context.Context, e *tradeunit.DirectoryEntry) (tradeunit.PutResult, error) {
	s, err := sp.p.shardOf(e.Key)
	if err != nil {
		return tradeunit.PutResult{}, err
	}
	b, err := sp.batcher(s.Shard)
	if err != nil {
		return tradeunit.PutResult{}, err
	}
	r, err := b.Do(ctx, e)
	if err != nil {
		return tradeunit.PutResult{}, err
	}
	if r.Err != nil && !errors.Is(r.Err, tradeunit.ErrVersionConflict) {
		return tradeunit.PutResult{}, r.Err
	}
	return r, nil
}

func (sp *shardPuts) batcher(id routing.ShardID) (*batch.Batcher[*tradeunit.DirectoryEntry, tradeunit.PutResult], error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return nil, tradeunit.Unavailable("proxy.put", "the proxy is shutting down; nothing was written", batch.ErrClosed)
	}
	b := sp.batchers[id]
	if b == nil {
		var err error
		if b, err = batch.New(sp.cfg, sp.flush); err != nil {
			return nil, tradeunit.Internal("proxy.put", err)
		}
		sp.batchers[id] = b
	}
	return b, nil
}

// flush sends a batch's puts to their shard in one call. The batch was
// queued for one shard, but the directory may have moved some of its
// buckets since: each put goes to the shard that holds its key now, one
// call per shard (normally one in all).
func (sp *shardPuts) flush(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	results := make([]tradeunit.PutResult, len(entries))
	groups := map[routing.ShardID][]int{}
	for i, e := range entries {
		s, err := sp.p.shardOf(e.Key)
		if err != nil {
			results[i].Err = err
			continue
		}
		groups[s.Shard] = append(groups[s.Shard], i)
	}
	var wg sync.WaitGroup
	for _, idx := range groups {
		wg.Go(func() {
			group := make([]*tradeunit.DirectoryEntry, len(idx))
			for j, i := range idx {
				group[j] = entries[i]
			}
			for j, r := range sp.call(ctx, group) {
				results[idx[j]] = r
			}
		})
	}
	wg.Wait()
	return results
}

// call sends entries, all of one shard, in one call to it.
func (sp *shardPuts) call(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	results, err := callShard(ctx, sp.p, entries[0].Key, "put", func(ctx context.Context, d tradeunit.DirectoryStore) ([]tradeunit.PutResult, error) {
		r := d.Put(ctx, entries)
		if len(r) != len(entries) {
			return nil, tradeunit.Internal("proxy.put", errors.New("directory answered a wrong number of results"))
		}
		// Every put failed alike (no answer, or the storage refused the
		// whole call): callAny decides whether another replica is asked.
		if failed := r[0].Err; failed != nil && !errors.Is(failed, tradeunit.ErrVersionConflict) && allFailed(r) {
			return r, failed
		}
		return r, nil
	})
	if err != nil {
		results = make([]tradeunit.PutResult, len(entries))
		for i := range results {
			results[i].Err = err
		}
	}
	return results
}

// allFailed reports whether every put of r failed other than by a conflict.
func allFailed(r []tradeunit.PutResult) bool {
	for _, x := range r {
		if x.Err == nil || errors.Is(x.Err, tradeunit.ErrVersionConflict) {
			return false
		}
	}
	return true
}

// Close ends every shard's batcher after its puts already taken.
func (sp *shardPuts) Close() {
	sp.mu.Lock()
	sp.closed = true
	bs := sp.batchers
	sp.batchers = nil
	sp.mu.Unlock()
	for _, b := range bs {
		b.Close()
	}
}
