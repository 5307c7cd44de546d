package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"tradeunit"
	"tradeunit/replicas"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
	"tradeunit/store/sqlstore"
)

// Backfill registers in the merchant-key directory the orders and refunds
// that units made before the directory existed, as committed entries, so
// that lookups by out_trade_no and out_refund_no find them and a repeated
// create returns them instead of making a second one.
//
// Each unit's storage is read (read-only, from the storage topology), its
// records listed in pages (OrdersAfter, RefundsAfter: the health checker's
// probe orders are never listed), and each record's entry is put, at
// version 1, through its shard's service, in batches: the service is the
// shard's one writer (group commit, its primary as its topology names it,
// fenced after a failover), so the backfill needs no access to the shards'
// databases and races the proxies' creates under the same
// compare-and-swap, checking the frozen buckets of a move as a proxy does.
//
// It is idempotent, so a re-run, or a run after a crash, goes over
// everything again and finds what is done: an entry that exists and names
// the record counts as already there; one that names another record is a
// conflict, a duplicate made before the directory, reported and never
// overwritten. A pending entry (a create reserving the key now) is
// committed to the unit's record, which existed first: for an order, the
// create's attempt is listed as abandoned, so that the reconciler closes
// whatever it makes on another unit; a refund's only if its attempt is on
// the record's unit (a refund made on another unit could not be undone).
// Orders made through the directory (they carry their attempt) are left to
// it. A verification pass then reads every record's entry back.
func (a *Admin) Backfill(ctx context.Context, o BackfillOptions) (*BackfillResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch {
	case a.Dialer == nil:
		return nil, errors.New("admin: no dialer to reach the directory shards")
	case a.Topology == nil:
		return nil, paramErrorf("no storage topology beside the routing table: the units' storage is not known")
	case a.Routes.Current().Directory == nil:
		return nil, paramErrorf("the routing table has no directory: publish its shards first")
	}
	units := o.Units
	if len(units) == 0 {
		for _, u := range a.Topology.Current().Units {
			units = append(units, u.Unit)
		}
	}
	b := &backfill{a: a, o: o, res: &BackfillResult{}, batches: map[routing.ShardID][]backfillItem{}}
	for _, id := range units {
		u := &UnitBackfill{Unit: id}
		err := b.unit(ctx, u)
		b.res.Units = append(b.res.Units, *u)
		if err != nil {
			return b.res, fmt.Errorf("unit %d: %w (what was written stays: run again to go on)", id, err)
		}
		if o.Progress != nil {
			o.Progress(*u)
		}
	}
	b.res.Verified = true
	for _, u := range b.res.Units {
		if u.Orders.Unverified+u.Refunds.Unverified > 0 {
			b.res.Verified = false
		}
	}
	return b.res, nil
}

// BackfillOptions tunes Backfill. Start from DefaultBackfillOptions.
type BackfillOptions struct {
	Units []tradeunit.UnitID // the units to go over; empty: every unit of the storage topology
	// Batch is how many entries one Put carries to a shard.
	Batch int
	// Page is how many records one read of a unit's storage returns.
	Page int
	// CallTimeout bounds one call to one shard replica.
	CallTimeout time.Duration
	// Workers is how many entries the verification reads at once.
	Workers int
	// Progress, if set, is told of each unit once it is done.
	Progress func(UnitBackfill)
}

// DefaultBackfillOptions puts 100 entries a call, reads 500 records a page
// and verifies 8 entries at a time, each call bounded by 3 s (the proxies'
// unit timeout).
func DefaultBackfillOptions() BackfillOptions {
	return BackfillOptions{Batch: 100, Page: 500, CallTimeout: 3 * time.Second, Workers: 8}
}

// Validate reports a setting out of range; it changes nothing.
func (o BackfillOptions) Validate() error {
	if o.Batch < 1 || o.Batch > 1000 || o.Page < 1 || o.CallTimeout <= 0 || o.Workers < 1 {
		return paramErrorf("backfill: batch must be 1..1000, page, timeout and workers positive")
	}
	for _, u := range o.Units {
		if err := u.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// BackfillResult is what Backfill did, unit by unit.
type BackfillResult struct {
	Units []UnitBackfill `json:"units"`
	// Problems lists the records that have no entry naming them (the
	// first MaxBackfillProblems; ProblemsOmitted counts the others).
	Problems        []BackfillProblem `json:"problems,omitempty"`
	ProblemsOmitted int               `json:"problems_omitted,omitempty"`
	// Verified says that the verification pass found every record of
	// every unit named by its key's entry.
	Verified bool `json:"verified"`
}

// MaxBackfillProblems bounds BackfillResult.Problems.
const MaxBackfillProblems = 100

// UnitBackfill counts one unit's records.
type UnitBackfill struct {
	Unit    tradeunit.UnitID `json:"unit"`
	Orders  RecordCounts     `json:"orders"`
	Refunds RecordCounts     `json:"refunds"`
}

// RecordCounts counts one kind of record of a unit. Seen = ViaDirectory +
// Registered + Already + Conflicts + Deferred + Invalid; the verification
// pass then reads the entry of every record not made through the
// directory: Verified + Unverified.
type RecordCounts struct {
	Seen int64 `json:"seen"` // records read (the probe merchant's are never listed)
	// ViaDirectory are orders made through the directory (they carry
	// their attempt): their entries are the creates' and the reconciler's.
	ViaDirectory int64 `json:"via_directory,omitempty"`
	Registered   int64 `json:"registered"` // entries this run wrote
	// TookOver are the registered entries that a create had reserved
	// (pending): committed to the record, which existed first.
	TookOver  int64 `json:"took_over,omitempty"`
	Already   int64 `json:"already"`   // entries that existed and name the record
	Conflicts int64 `json:"conflicts"` // entries that name another record: duplicates made before the directory
	// Deferred were left for a later run: their bucket is being moved,
	// or a create on another unit is reserving the key.
	Deferred   int64 `json:"deferred"`
	Invalid    int64 `json:"invalid,omitempty"` // records whose entry the directory refuses (see Problems)
	Verified   int64 `json:"verified"`          // entries read back naming the record
	Unverified int64 `json:"unverified"`        // records no entry names (conflicts, deferred, missing)
}

func (c *RecordCounts) add(d RecordCounts) {
	c.Seen += d.Seen
	c.ViaDirectory += d.ViaDirectory
	c.Registered += d.Registered
	c.TookOver += d.TookOver
	c.Already += d.Already
	c.Conflicts += d.Conflicts
	c.Deferred += d.Deferred
	c.Invalid += d.Invalid
	c.Verified += d.Verified
	c.Unverified += d.Unverified
}

// Totals sums the counts of every unit.
func (r *BackfillResult) Totals() (orders, refunds RecordCounts) {
	for _, u := range r.Units {
		orders.add(u.Orders)
		refunds.add(u.Refunds)
	}
	return orders, refunds
}

// BackfillProblem is a record that the backfill could not register.
type BackfillProblem struct {
	Kind string           `json:"kind"` // conflict, deferred, invalid, unverified
	Key  string           `json:"key"`  // "order 1900000001/abc-1"
	Unit tradeunit.UnitID `json:"unit"`
	// RecordNo is the unit's record: its order number (a refund's order).
	RecordNo string `json:"record_no"`
	// EntryRecordNo is the record the key's entry names (a conflict).
	EntryRecordNo string `json:"entry_record_no,omitempty"`
	Detail        string `json:"detail"`
}

// backfill is one run of Backfill.
type backfill struct {
	a       *Admin
	o       BackfillOptions
	res     *BackfillResult
	batches map[routing.ShardID][]backfillItem
	// reported are the keys of this unit with a problem listed already.
	reported map[tradeunit.MerchantKey]bool
}

// backfillItem is one record's entry on its way to its shard.
type backfillItem struct {
	entry    *tradeunit.DirectoryEntry
	unit     tradeunit.UnitID
	counts   *RecordCounts
	takeover bool // the entry commits a pending one
}

func (b *backfill) unit(ctx context.Context, u *UnitBackfill) error {
	st, _, err := b.a.entryOf(routing.UnitRef(u.Unit))
	if err != nil {
		return err
	}
	if !st.HasPrimary() {
		return paramErrorf("its storage has no primary (a failover is under way)")
	}
	store, err := sqlstore.OpenReadOnly(ctx, st.Primary, b.a.Passwords)
	if err != nil {
		return err
	}
	defer store.Close()
	b.reported = map[tradeunit.MerchantKey]bool{}
	register := func(it backfillItem) error { return b.add(ctx, it) }
	if err := b.records(ctx, store, u, register); err != nil {
		return err
	}
	if err := b.flushAll(ctx); err != nil {
		return err
	}
	return b.verify(ctx, store, u)
}

// records calls fn with the entry of every record of the unit that the
// directory must know, counting them.
func (b *backfill) records(ctx context.Context, store *sqlstore.Store, u *UnitBackfill, fn func(backfillItem) error) error {
	now := b.a.now().UTC().Truncate(time.Microsecond)
	for after := ""; ; {
		page, err := store.OrdersAfter(ctx, after, b.o.Page)
		if err != nil {
			return fmt.Errorf("read orders after %q: %w", after, err)
		}
		for _, o := range page {
			after = o.OrderNo
			if tradeunit.IsProbe(o.Mchid) {
				continue // the store lists none; the health checker's are never a merchant's
			}
			u.Orders.Seen++
			if o.Attempt != 0 {
				u.Orders.ViaDirectory++
				continue
			}
			if err := fn(backfillItem{entry: orderEntry(u.Unit, o, now), unit: u.Unit, counts: &u.Orders}); err != nil {
				return err
			}
		}
		if len(page) < b.o.Page {
			break
		}
	}
	for cursor := int64(0); ; {
		page, next, err := store.RefundsAfter(ctx, cursor, b.o.Page)
		if err != nil {
			return fmt.Errorf("read refunds after %d: %w", cursor, err)
		}
		cursor = next
		for _, f := range page {
			if tradeunit.IsProbe(f.Mchid) {
				continue
			}
			u.Refunds.Seen++
			if err := fn(backfillItem{entry: refundEntry(u.Unit, f, now), unit: u.Unit, counts: &u.Refunds}); err != nil {
				return err
			}
		}
		if len(page) < b.o.Page {
			return nil
		}
	}
}

// orderEntry is the committed entry of an order made before the
// directory: the entry a create through the directory would have left
// (DirectoryEntry.CommittedTo).
func orderEntry(unit tradeunit.UnitID, o *tradeunit.Order, now time.Time) *tradeunit.DirectoryEntry {
	return &tradeunit.DirectoryEntry{
		Key:   tradeunit.MerchantKey{Mchid: o.Mchid, Kind: tradeunit.KeyOrder, Value: o.OutTradeNo},
		State: tradeunit.EntryCommitted, Attempt: tradeunit.Attempt{Unit: unit, ID: backfillAttempt(o.OrderNo)},
		Fingerprint: (&tradeunit.CreateOrderRequest{Description: o.Description, Amount: o.Amount}).Fingerprint(),
		RecordNo:    o.OrderNo, Created: o.CreateTime, Updated: now, Version: 1,
	}
}

// refundEntry is the committed entry of a refund made before the
// directory: it names the refunded order, and its fingerprint is that of
// the request the refund was made from (order, amount, reason).
func refundEntry(unit tradeunit.UnitID, f *tradeunit.Refund, now time.Time) *tradeunit.DirectoryEntry {
	req := tradeunit.CreateRefundRequest{OrderNo: f.OrderNo, Amount: tradeunit.RefundAmount{Refund: f.Amount.Refund}, Reason: f.Reason}
	return &tradeunit.DirectoryEntry{
		Key:   tradeunit.MerchantKey{Mchid: f.Mchid, Kind: tradeunit.KeyRefund, Value: f.OutRefundNo},
		State: tradeunit.EntryCommitted, Attempt: tradeunit.Attempt{Unit: unit, ID: backfillAttempt(f.RefundID)},
		Fingerprint: req.Fingerprint(), RecordNo: f.OrderNo, Created: f.CreateTime, Updated: now, Version: 1,
	}
}

// backfillAttempt is the attempt id a backfilled entry records: an entry
// needs one, and the record was made by none. It is derived from the
// record (FNV-1a), so that every run writes the same entry, and never 0.
func backfillAttempt(record string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range []byte("backfill\x00" + record) {
		h ^= uint64(c)
		h *= prime
	}
	return max(h, 1)
}

// problem records a record that has no entry naming it.
func (b *backfill) problem(kind string, it backfillItem, entryRecord, detail string) {
	b.reported[it.entry.Key] = true
	if len(b.res.Problems) >= MaxBackfillProblems {
		b.res.ProblemsOmitted++
		return
	}
	b.res.Problems = append(b.res.Problems, BackfillProblem{Kind: kind, Key: it.entry.Key.String(), Unit: it.unit,
		RecordNo: it.entry.RecordNo, EntryRecordNo: entryRecord, Detail: detail})
}

// route returns the shard of key, or nil and why it cannot be written now.
func (b *backfill) route(key tradeunit.MerchantKey) (*routing.DirectoryShard, string, error) {
	s, frozen := b.a.Routes.Current().Directory.ShardOf(key.Bucket())
	switch {
	case s == nil:
		return nil, "", fmt.Errorf("no directory shard holds bucket %d", key.Bucket())
	case frozen:
		return nil, fmt.Sprintf("its bucket %d is being moved to another shard: run again once the move is done", key.Bucket()), nil
	case !s.Available:
		return nil, fmt.Sprintf("its shard %d is masked in the routing table: run again once it is available", s.Shard), nil
	}
	return s, "", nil
}

// add queues an entry for its shard, and puts the shard's batch once full.
func (b *backfill) add(ctx context.Context, it backfillItem) error {
	s, why, err := b.route(it.entry.Key)
	if err != nil {
		return err
	}
	if s == nil {
		it.counts.Deferred++
		b.problem("deferred", it, "", why)
		return nil
	}
	b.batches[s.Shard] = append(b.batches[s.Shard], it)
	if len(b.batches[s.Shard]) >= b.o.Batch {
		return b.flush(ctx, s.Shard)
	}
	return nil
}

func (b *backfill) flushAll(ctx context.Context) error {
	for len(b.batches) > 0 {
		for id := range b.batches {
			if err := b.flush(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxBackfillRounds bounds how often one entry follows a key's changes.
const maxBackfillRounds = 3

// flush puts shard id's batch, and settles each entry that lost to one
// stored meanwhile.
func (b *backfill) flush(ctx context.Context, id routing.ShardID) error {
	items := b.batches[id]
	delete(b.batches, id)
	var send []backfillItem
	for _, it := range items {
		// The table may have changed since the entry was queued: a move
		// froze its bucket, or switched it to another shard.
		s, why, err := b.route(it.entry.Key)
		switch {
		case err != nil:
			return err
		case s == nil:
			it.counts.Deferred++
			b.problem("deferred", it, "", why)
		case s.Shard != id:
			b.batches[s.Shard] = append(b.batches[s.Shard], it)
		default:
			send = append(send, it)
		}
	}
	shard, ok := b.a.Routes.Current().Directory.Shard(id)
	if !ok {
		return fmt.Errorf("directory shard %d left the routing table", id)
	}
	for round := 0; len(send) > 0 && round < maxBackfillRounds; round++ {
		results, err := b.put(ctx, shard, send)
		if err != nil {
			return err
		}
		var again []backfillItem
		for i, r := range results {
			it := send[i]
			switch {
			case r.Err == nil:
				it.counts.Registered++
				if it.takeover {
					it.counts.TookOver++
				}
			case errors.Is(r.Err, tradeunit.ErrVersionConflict):
				if next, ok := b.settle(it, r.Entry); ok {
					again = append(again, next)
				}
			default: // PARAM_ERROR: put returned every other error
				it.counts.Invalid++
				b.problem("invalid", it, "", tradeunit.ErrorMessage(r.Err))
			}
		}
		send = again
	}
	for _, it := range send {
		it.counts.Deferred++
		b.problem("deferred", it, "", "its entry kept changing under creates: run again")
	}
	return nil
}

// put puts the items' entries on shard s in one call, trying its next
// replica when one gives no answer: the puts are idempotent (an entry a
// lost answer wrote comes back as a conflict that names its record).
func (b *backfill) put(ctx context.Context, s *routing.DirectoryShard, items []backfillItem) ([]tradeunit.PutResult, error) {
	if !s.Available {
		return nil, fmt.Errorf("directory shard %d is masked in the routing table", s.Shard)
	}
	entries := make([]*tradeunit.DirectoryEntry, len(items))
	for i, it := range items {
		entries[i] = it.entry
	}
	rs, _, err := replicas.Call(ctx, fmt.Sprintf("directory shard %d", s.Shard), s.LogicAddrs, b.o.CallTimeout, b.a.Dialer.Directory,
		func(ctx context.Context, c tradeunit.DirectoryConn) ([]tradeunit.PutResult, error) {
			rs := c.Put(ctx, entries)
			if len(rs) != len(entries) {
				return nil, tradeunit.Internal("admin.Backfill", fmt.Errorf("%d results for %d entries", len(rs), len(entries)))
			}
			for _, r := range rs {
				if r.Err != nil && !errors.Is(r.Err, tradeunit.ErrVersionConflict) && !tradeunit.IsCode(r.Err, tradeunit.CodeParamError) {
					return nil, r.Err // the storage refused, or no answer: the whole call failed
				}
			}
			return rs, nil
		})
	if err != nil {
		return nil, fmt.Errorf("put %d entries on directory shard %d: %w", len(entries), s.Shard, err)
	}
	return rs, nil
}

// settle decides what to do with an entry that lost to stored: it counts
// it, or returns the entry to put next.
func (b *backfill) settle(it backfillItem, stored *tradeunit.DirectoryEntry) (backfillItem, bool) {
	ours := it.entry
	switch {
	case stored == nil: // a takeover whose entry is gone: start again
		n := *ours.Clone()
		n.Version, n.Abandoned = 1, nil
		return backfillItem{entry: &n, unit: it.unit, counts: it.counts}, true
	case stored.State == tradeunit.EntryCommitted && stored.RecordNo == ours.RecordNo && stored.Fingerprint == ours.Fingerprint:
		it.counts.Already++
		return it, false
	case stored.State == tradeunit.EntryCommitted:
		it.counts.Conflicts++
		detail := "the key's entry names another record: a duplicate made before the directory; neither is changed"
		if stored.RecordNo == ours.RecordNo {
			detail = "the key's entry names this record with another request body; it is left as it is"
		}
		b.problem("conflict", it, stored.RecordNo, detail)
		return it, false
	case len(stored.Abandoned) >= dirstore.MaxAbandoned:
		it.counts.Deferred++
		b.problem("deferred", it, "", "a create is reserving the key and its entry lists too many abandoned attempts")
		return it, false
	case ours.Key.Kind == tradeunit.KeyRefund && stored.Attempt.Unit != it.unit:
		it.counts.Deferred++
		b.problem("deferred", it, "", fmt.Sprintf("a refund of this out_refund_no is being made on unit %d: run again", stored.Attempt.Unit))
		return it, false
	}
	// A create reserves the key now: the unit's record existed first and
	// is the key's. The create's commit will lose and follow this entry.
	n := stored.Next(func(n *tradeunit.DirectoryEntry) {
		n.State, n.RecordNo, n.Fingerprint, n.Updated = tradeunit.EntryCommitted, ours.RecordNo, ours.Fingerprint, ours.Updated
		if ours.Key.Kind == tradeunit.KeyOrder {
			// The attempt may make an order on another unit: the
			// reconciler closes it, or refuses the attempt.
			if !slices.Contains(n.Abandoned, stored.Attempt) {
				n.Abandoned = append(n.Abandoned, stored.Attempt)
			}
			n.Attempt = ours.Attempt
		}
	})
	return backfillItem{entry: n, unit: it.unit, counts: it.counts, takeover: true}, true
}
