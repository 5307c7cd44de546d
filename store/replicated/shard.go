package replicated

import (
	"context"

	"tradeunit"
	"tradeunit/store/dirstore"
)

// Shard is a directory shard's replicated storage: tradeunit.DirectoryStore
// over the dirstore of the shard's primary of the moment. Every decision
// about a key is made from its entry, which must be current: writes and the
// reads that find no committed entry go to the primary. A committed entry
// never changes, so while the primary cannot be read a replica's committed
// entry is still the answer: lookups of existing orders outlive the
// primary.
type Shard struct {
	*Storage[*dirstore.Store]
}

var _ tradeunit.DirectoryStore = (*Shard)(nil)

// OpenShard opens the storage of the directory shard name ("directory
// shard 2"; see Open).
func OpenShard(cfg Config, name string, deps Deps) (*Shard, error) {
	deps.Name = name
	s, err := Open(cfg, deps, Opener[*dirstore.Store]{Primary: dirstore.Open, Replica: dirstore.OpenReadOnly})
	if err != nil {
		return nil, err
	}
	return &Shard{s}, nil
}

// Entry implements tradeunit.DirectoryStore. A MariaDB primary's answer
// that finds the entry absent or pending is confirmed (see confirm): a
// fenced primary may have missed the change that a new one holds. A
// replica's answer counts only if it is a committed entry.
func (sh *Shard) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	reads, err := sh.Readers(tradeunit.RealTime)
	if err != nil {
		return nil, err
	}
	for _, r := range reads {
		e, err := r.Store.Entry(ctx, key)
		committed := err == nil && e.State == tradeunit.EntryCommitted
		switch {
		case r.Info.Source == tradeunit.FromReplica:
			if committed {
				return e, nil
			}
		case r.Confirm && !committed:
			if err = confirm(ctx, r.Store, err); !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable) {
				return e, err
			}
		case !tradeunit.IsCode(err, tradeunit.CodeUnitUnavailable):
			return e, err
		}
	}
	return nil, &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.Shard.Entry",
		Message: sh.deps.Name + " cannot tell whether the key has an entry now (its primary cannot be read); retry later"}
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
