package unit

import (
	"context"

	"tradeunit"
)

// primaryAllocator reserves sequence blocks on the unit's primary of the
// moment. A block reserved on a primary that is later replaced stays
// valid: its reservation was acknowledged by a replica, so the new primary
// has it and never hands it out again.
type primaryAllocator struct{ storage tradeunit.Storage }

func (a primaryAllocator) AllocateSequence(ctx context.Context, n int64) (int64, error) {
	store, err := a.storage.Primary()
	if err != nil {
		return 0, err
	}
	return store.AllocateSequence(ctx, n)
}

// read runs get on the stores the read's consistency allows, best first,
// and marks the result with where it was read. The next store is asked
// when one fails or cannot serve (it may be down, or fenced), and when a
// replica does not have the record (it may only be behind). A replica's "not found" is never the
// answer: with no other store to ask, the read fails with UNIT_UNAVAILABLE
// rather than tell a merchant that an order it was given does not exist.
func read[T any](ctx context.Context, storage tradeunit.Storage, get func(tradeunit.Store) (*T, error), info func(*T) *tradeunit.ReadInfo) (*T, error) {
	readers, err := storage.Readers(tradeunit.ConsistencyFrom(ctx))
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, r := range readers {
		v, err := get(r.Store)
		if err == nil {
			*info(v) = r.Info
			return v, nil
		}
		switch code := tradeunit.ErrorCode(err); {
		case code == tradeunit.CodeInternal, code == tradeunit.CodeUnitUnavailable:
		case code == tradeunit.CodeNotFound && r.Info.Source == tradeunit.FromReplica:
			err = &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "unit.read", Err: err,
				Message: "the unit's primary cannot be read now and its replica does not have this record yet; retry later"}
		default:
			return nil, err // the store's answer
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		return nil, tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "the unit has no storage to read")
	}
	return nil, lastErr
}

func orderRead(o *tradeunit.Order) *tradeunit.ReadInfo   { return &o.Read }
func refundRead(f *tradeunit.Refund) *tradeunit.ReadInfo { return &f.Read }
