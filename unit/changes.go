package unit

import (
	"context"
	"errors"

	"tradeunit"
)

// onPrimary is an item for a group commit of changes to existing orders
// (pays, closes, refunds), with the primary its caller found (see change).
type onPrimary[T any] struct {
	store tradeunit.Store
	item  T
}

// changeOrder makes c (its time set now) through the group commit of
// changes, on the unit's primary of the moment; a change refused by a
// frozen storage waits for the switch like any other (see change).
func (s *Service) changeOrder(ctx context.Context, c tradeunit.OrderChange) (*tradeunit.Order, error) {
	return change(ctx, s, func(store tradeunit.Store) (*tradeunit.Order, error) {
		c.At = s.clock()
		res, err := s.changes.Do(ctx, onPrimary[tradeunit.OrderChange]{store: store, item: c})
		if err == nil {
			err = res.Err
		}
		return res.Order, err
	})
}

func changeBatch(ctx context.Context, items []onPrimary[tradeunit.OrderChange]) []tradeunit.ChangeResult {
	return perPrimary(ctx, items, tradeunit.Store.ChangeOrders,
		func(err error) tradeunit.ChangeResult { return tradeunit.ChangeResult{Err: err} })
}

func refundBatch(ctx context.Context, items []onPrimary[*tradeunit.Refund]) []tradeunit.RefundResult {
	return perPrimary(ctx, items, tradeunit.Store.CreateRefunds,
		func(err error) tradeunit.RefundResult { return tradeunit.RefundResult{Err: err} })
}

// perPrimary writes a batch with write, one transaction per primary: the
// callers of a batch found the same primary unless a failover came between
// them, and each item goes to the primary its caller found (and waits on,
// see change). failed is an item's result for a failure of its whole run.
// Stores are told apart as interface values: each is a pointer.
func perPrimary[T, R any](ctx context.Context, items []onPrimary[T], write func(tradeunit.Store, context.Context, []T) []R,
	failed func(error) R) []R {
	results := make([]R, 0, len(items))
	run := make([]T, 0, len(items))
	for start := 0; start < len(items); {
		store := items[start].store
		run = run[:0]
		end := start
		for ; end < len(items) && items[end].store == store; end++ {
			run = append(run, items[end].item)
		}
		got := write(store, ctx, run)
		if len(got) != len(run) {
			// The batch's answers must stay aligned with its callers.
			got = make([]R, len(run))
			for i := range got {
				got[i] = failed(tradeunit.Internal("unit.perPrimary", errResultCount))
			}
		}
		results = append(results, got...)
		start = end
	}
	return results
}

// errResultCount: a Store answered a batch with the wrong number of results.
var errResultCount = errors.New("the storage answered a batch with the wrong number of results")
