package proxy

import (
	"context"
	"math/rand/v2"
	"time"

	"tradeunit"
	"tradeunit/routing"
)

// The proxy's side of the merchant-key directory (see tradeunit's
// directory.go): each key's entry is read and written on the shard that
// holds the key's bucket, by compare-and-swap on its version. Everything a
// proxy decides about a key it decides from the entry it read, so any number
// of proxies can work on one key at once.

// shardOf returns the directory shard of key. Errors: UNIT_UNAVAILABLE when
// the table has no directory, the shard is masked or its bucket is being
// moved: retry later.
func (p *Proxy) shardOf(key tradeunit.MerchantKey) (*routing.DirectoryShard, error) {
	d := p.routes.Current().Directory
	if d == nil {
		return nil, tradeunit.Unavailable("proxy.shardOf", "no merchant-key directory is configured; retry later", nil)
	}
	s, frozen := d.ShardOf(key.Bucket())
	switch {
	case s == nil:
		return nil, tradeunit.Unavailable("proxy.shardOf", "no directory shard holds this key; retry later", nil)
	case frozen:
		return nil, tradeunit.Unavailable("proxy.shardOf", "this key's directory shard is moving it; retry in a moment", nil)
	case !s.Available:
		return nil, tradeunit.Unavailable("proxy.shardOf", "this key's directory shard is unavailable; retry later", nil)
	}
	return s, nil
}

// callShard calls the directory shard of key on one of its replicas.
func callShard[T any](ctx context.Context, p *Proxy, key tradeunit.MerchantKey, op string,
	call func(ctx context.Context, d tradeunit.DirectoryStore) (T, error)) (T, error) {
	s, err := p.shardOf(key)
	if err != nil {
		var zero T
		return zero, err
	}
	start := time.Now()
	v, _, err := callAny(ctx, p, "directory shard "+shardName(s.Shard), s.LogicAddrs, nil, p.cfg.ShardTimeout, p.dialer.Directory,
		func(ctx context.Context, c tradeunit.DirectoryConn) (T, error) { return call(ctx, c) })
	p.metrics.shardCall(s.Shard, op, err, time.Since(start))
	return v, err
}

// entry reads key's entry; nil (and no error) when there is none.
func (p *Proxy) entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	e, err := callShard(ctx, p, key, "get", func(ctx context.Context, d tradeunit.DirectoryStore) (*tradeunit.DirectoryEntry, error) {
		return d.Entry(ctx, key)
	})
	if tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		return nil, nil
	}
	return e, err
}

// reserve puts e, a pending entry of version 1, without reading its key
// first, and returns the entry to go on from: most creates and refunds are
// of a new key, which the put reserves at once (one shard call, not two); a
// key with an entry fails it, which returns that entry. When the put fails
// (the shard takes no writes now), the entry is read instead: a repeat of a
// create or refund that committed is still answered.
func (p *Proxy) reserve(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, error) {
	got, err := p.putFollow(ctx, e)
	if err == nil {
		return got, nil
	}
	if read, rerr := p.entry(ctx, e.Key); rerr == nil && read != nil {
		return read, nil
	}
	return nil, err
}

// put writes e (its version the stored one's plus one). On a conflict it
// returns the entry that won and an error wrapping ErrVersionConflict.
func (p *Proxy) put(ctx context.Context, e *tradeunit.DirectoryEntry) (*tradeunit.DirectoryEntry, error) {
	e.Updated = time.Now().UTC().Truncate(time.Microsecond)
	if e.Version == 1 {
		e.Created = e.Updated
	}
	res, err := p.shardPuts.put(ctx, e)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		p.metrics.conflicts.Inc()
	}
	return res.Entry, res.Err
}

// newAttempt returns a fresh attempt on unit u.
func newAttempt(u tradeunit.UnitID) tradeunit.Attempt {
	for {
		if id := rand.Uint64(); id != 0 {
			return tradeunit.Attempt{Unit: u, ID: id}
		}
	}
}

// stale reports whether a pending entry has waited longer than any create
// could take: the proxy that wrote it gave up or died, and another may
// finish it.
func (p *Proxy) stale(e *tradeunit.DirectoryEntry) bool {
	return e.State == tradeunit.EntryPending && time.Since(e.Updated) > p.cfg.StaleAfter()
}

func shardName(id routing.ShardID) string { return tradeunit.UnitID(id).String() }
