package unit

import (
	"context"
	"errors"

	"tradeunit"
)

// storeChange is a pay or close for the group commit of changes, with the
// primary its caller found (see change).
type storeChange struct {
	store  tradeunit.Store
	change tradeunit.OrderChange
}

// changeOrder makes c (its time set now) through the group commit of
// changes, on the unit's primary of the moment; a change refused by a
// frozen storage waits for the switch like any other (see change).
func (s *Service) changeOrder(ctx context.Context, c tradeunit.OrderChange) (*tradeunit.Order, error) {
	return change(ctx, s, func(store tradeunit.Store) (*tradeunit.Order, error) {
		c.At = s.clock()
		res, err := s.changes.Do(ctx, storeChange{store: store, change: c})
		if err == nil {
			err = res.Err
		}
		return res.Order, err
	})
}

// changeBatch makes a batch of changes, one transaction per primary: the
// callers of a batch found the same primary unless a failover came between
// them, and each change goes to the primary its caller found (and waits
// on, see change).
func changeBatch(ctx context.Context, items []storeChange) []tradeunit.ChangeResult {
	results := make([]tradeunit.ChangeResult, 0, len(items))
	changes := make([]tradeunit.OrderChange, 0, len(items))
	for start := 0; start < len(items); {
		store := items[start].store
		changes = changes[:0]
		end := start
		for ; end < len(items) && items[end].store == store; end++ {
			changes = append(changes, items[end].change)
		}
		got := store.ChangeOrders(ctx, changes)
		if len(got) != len(changes) {
			// The batch's answers must stay aligned with its callers.
			got = failAll(len(changes), tradeunit.Internal("unit.changeBatch", errResultCount))
		}
		results = append(results, got...)
		start = end
	}
	return results
}

// errResultCount: a Store answered a batch with the wrong number of results.
var errResultCount = errors.New("the storage answered a batch of changes with the wrong number of results")

func failAll(n int, err error) []tradeunit.ChangeResult {
	results := make([]tradeunit.ChangeResult, n)
	for i := range results {
		results[i].Err = err
	}
	return results
}
