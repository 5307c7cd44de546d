package replicated

import (
	"context"

	"tradeunit"
	"tradeunit/store/dirstore"
)

// Shard is a directory shard's replicated storage: tradeunit.DirectoryStore
// over the dirstore of the shard's primary of the moment. Its replicas are
// not read: every decision about a key is made from its entry, which must
// be current; they are failover candidates.
type Shard struct {
	*Storage[*dirstore.Store]
}

var _ tradeunit.DirectoryStore = (*Shard)(nil)

// OpenShard opens the storage of the directory shard name ("directory
// shard 2"; see Open).
func OpenShard(cfg Config, name string, deps Deps) (*Shard, error) {
	deps.Name = name
	s, err := Open(cfg, deps, Opener[*dirstore.Store]{Primary: dirstore.Open})
	if err != nil {
		return nil, err
	}
	return &Shard{s}, nil
}

// Entry implements tradeunit.DirectoryStore. A committed entry never
// changes, so a MariaDB primary's answer is taken as it is; one that finds
// the entry absent or pending is confirmed (see confirm): a fenced primary
// may have missed the change that a new one holds.
func (sh *Shard) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	reads, err := sh.Readers(tradeunit.RealTime)
	if err != nil {
		return nil, err
	}
	r := reads[0] // the primary: no replica is read
	e, err := r.Store.Entry(ctx, key)
	if r.Confirm && (err != nil || e.State != tradeunit.EntryCommitted) {
		err = confirm(ctx, r.Store, err)
	}
	return e, err
}

// Put implements tradeunit.DirectoryStore on the primary; while it cannot
// take changes, every result is UNIT_UNAVAILABLE (nothing written).
func (sh *Shard) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	store, err := sh.Writer()
	if err != nil {
		out := make([]tradeunit.PutResult, len(entries))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	return store.Put(ctx, entries)
}

// Abandoned implements tradeunit.DirectoryStore on the primary, while it
// can take changes: the reconciler that reads them writes next.
func (sh *Shard) Abandoned(ctx context.Context, after tradeunit.MerchantKey, limit int) ([]*tradeunit.DirectoryEntry, error) {
	store, err := sh.Writer()
	if err != nil {
		return nil, err
	}
	return store.Abandoned(ctx, after, limit)
}
