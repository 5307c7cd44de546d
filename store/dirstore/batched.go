package dirstore

import (
	"context"
	"fmt"

	"tradeunit"
	"tradeunit/batch"
)

// Batched is a DirectoryStore whose concurrent Puts share transactions
// (group commit): each Put's entries join the batch being collected, and
// one Put of the underlying store writes the whole batch, so that the two
// writes of every create cost a share of one commit instead of one each.
// A Put's own entries stay in one transaction; entries of one key from
// different callers are written in the order they came, each seeing the
// ones before. Reads go straight to the store.
//
// A caller whose context ends while its Put waits gets, in every result,
// either a definite refusal (its entries were withdrawn before the batch
// was written) or an error for which tradeunit.OutcomeUnknown is true (its
// entries were in the batch being written): see package batch.
type Batched struct {
	store tradeunit.DirectoryStore
	b     *batch.Batcher[[]*tradeunit.DirectoryEntry, []tradeunit.PutResult]
}

var _ tradeunit.DirectoryStore = (*Batched)(nil)

// NewBatched returns s with its Puts batched by cfg. Close it before s.
func NewBatched(s tradeunit.DirectoryStore, cfg batch.Config) (*Batched, error) {
	bs := &Batched{store: s}
	var err error
	bs.b, err = batch.New(cfg, bs.flush)
	if err != nil {
		return nil, err
	}
	return bs, nil
}

// flush writes the Puts of a batch with one Put of the store.
func (bs *Batched) flush(ctx context.Context, puts [][]*tradeunit.DirectoryEntry) [][]tradeunit.PutResult {
	all := puts[0]
	if len(puts) > 1 {
		n := 0
		for _, p := range puts {
			n += len(p)
		}
		all = make([]*tradeunit.DirectoryEntry, 0, n)
		for _, p := range puts {
			all = append(all, p...)
		}
	}
	results := bs.store.Put(ctx, all)
	if len(results) != len(all) {
		err := tradeunit.Internal("dirstore.Batched.Put", fmt.Errorf("the store returned %d results for %d entries", len(results), len(all)))
		results = make([]tradeunit.PutResult, len(all))
		for i := range results {
			results[i].Err = err
		}
	}
	out := make([][]tradeunit.PutResult, len(puts))
	for i, p := range puts {
		out[i], results = results[:len(p):len(p)], results[len(p):]
	}
	return out
}

// Put stores entries as tradeunit.DirectoryStore's Put does, in one
// transaction shared with other callers' Puts.
func (bs *Batched) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	if len(entries) == 0 {
		return []tradeunit.PutResult{}
	}
	results, err := bs.b.Do(ctx, entries)
	if err != nil {
		results = make([]tradeunit.PutResult, len(entries))
		for i := range results {
			results[i].Err = err
		}
	}
	return results
}

// Entry returns the store's entry for key.
func (bs *Batched) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	return bs.store.Entry(ctx, key)
}

// Abandoned returns the store's entries with abandoned attempts.
func (bs *Batched) Abandoned(ctx context.Context, after tradeunit.MerchantKey, limit int) ([]*tradeunit.DirectoryEntry, error) {
	return bs.store.Abandoned(ctx, after, limit)
}

// Stats returns what the batcher has flushed.
func (bs *Batched) Stats() batch.Stats { return bs.b.Stats() }

// Close writes the Puts already taken and stops taking more; it does not
// close the store.
func (bs *Batched) Close() error { return bs.b.Close() }
