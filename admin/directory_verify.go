package admin

import (
	"context"
	"fmt"
	"sync"

	"tradeunit"
	"tradeunit/replicas"
	"tradeunit/store/sqlstore"
)

// verify goes over the unit's records again and reads each one's entry
// from its shard's service, as a proxy's lookup does: it must be committed
// to the record. Records made since the first pass are read too.
func (b *backfill) verify(ctx context.Context, store *sqlstore.Store, u *UnitBackfill) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, b.o.Workers)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	check := func(it backfillItem) error {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			ok, why, err := b.named(ctx, it.entry)
			if err != nil {
				fail(fmt.Errorf("verify %s: %w", it.entry.Key, err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				it.counts.Verified++
				return
			}
			it.counts.Unverified++
			if !b.reported[it.entry.Key] {
				b.problem("unverified", it, "", why)
			}
		})
		return nil
	}
	// The counts of the first pass stay; the scan counts its records
	// again, into a copy that is dropped.
	scan := *u
	err := b.records(ctx, store, &scan, func(it backfillItem) error {
		switch it.counts {
		case &scan.Orders:
			it.counts = &u.Orders
		case &scan.Refunds:
			it.counts = &u.Refunds
		}
		return check(it)
	})
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return err
}

// named reports whether want's key has an entry committed to want's
// record, and if not, why.
func (b *backfill) named(ctx context.Context, want *tradeunit.DirectoryEntry) (bool, string, error) {
	s, frozen := b.a.Routes.Current().Directory.ShardOf(want.Key.Bucket())
	switch {
	case s == nil:
		return false, "", fmt.Errorf("no directory shard holds bucket %d", want.Key.Bucket())
	case !s.Available:
		return false, fmt.Sprintf("its shard %d is masked in the routing table", s.Shard), nil
	}
	e, _, err := replicas.Call(ctx, fmt.Sprintf("directory shard %d", s.Shard), s.LogicAddrs, b.o.CallTimeout, b.a.Dialer.Directory,
		func(ctx context.Context, c tradeunit.DirectoryConn) (*tradeunit.DirectoryEntry, error) {
			return c.Entry(ctx, want.Key)
		})
	switch {
	case tradeunit.IsCode(err, tradeunit.CodeNotFound):
		if frozen {
			return false, "no entry (its bucket is being moved: run again once the move is done)", nil
		}
		return false, "no entry", nil
	case err != nil:
		return false, "", err
	case e.State != tradeunit.EntryCommitted:
		return false, "the entry is pending: a create is reserving the key", nil
	case e.RecordNo != want.RecordNo || e.Fingerprint != want.Fingerprint:
		return false, "the entry names " + e.RecordNo, nil
	}
	return true, "", nil
}
