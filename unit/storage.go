package unit

import (
	"context"

	"tradeunit"
)

// Storage is a unit's storage as a Service sees it: a primary for changes
// and real-time reads, and the stores a read may use. It may change under
// the service (a failover); every call asks it again.
type Storage interface {
	// Primary returns the store of the unit's primary. Errors:
	// UNIT_UNAVAILABLE when the unit has no primary that can take a change
	// now (down, failing over, fenced, or unable to get a replica's
	// acknowledgement): a definite answer, nothing was written.
	Primary() (tradeunit.Store, error)
	// Readers returns the stores a read of consistency c may use, best
	// first, each with what to tell the caller about it: for a real-time
	// read the primary, then a replica in degraded mode; for an eventual
	// read a replica within the lag bound, then the primary. Errors:
	// UNIT_UNAVAILABLE when no store can serve the read.
	Readers(c tradeunit.Consistency) ([]Reader, error)
}

// Reader is one store a read may use, and where the result comes from.
type Reader struct {
	Store tradeunit.Store
	Info  tradeunit.ReadInfo
}

// Fixed returns the Storage of one store that serves everything: a unit
// on one SQLite file, or on one database whose replicas it does not use.
func Fixed(store tradeunit.Store) Storage { return fixed{store} }

type fixed struct{ store tradeunit.Store }

func (f fixed) Primary() (tradeunit.Store, error) { return f.store, nil }

func (f fixed) Readers(tradeunit.Consistency) ([]Reader, error) {
	return []Reader{{Store: f.store}}, nil
}

// primaryAllocator reserves sequence blocks on the unit's primary of the
// moment. A block reserved on a primary that is later replaced stays
// valid: its reservation was acknowledged by a replica, so the new primary
// has it and never hands it out again.
type primaryAllocator struct{ storage Storage }

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
func read[T any](ctx context.Context, storage Storage, get func(tradeunit.Store) (*T, error), info func(*T) *tradeunit.ReadInfo) (*T, error) {
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
