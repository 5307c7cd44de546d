package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
)

// Move moves the buckets r of the merchant-key directory from the shard
// that holds them to shard to: an explicit, verified operation (rare: the
// number of buckets is fixed, so moving some is how a shard is added or
// relieved). Its steps:
//
//  1. check: one shard holds all of r; to is another, available shard;
//     both have storage in the topology;
//  2. freeze r on its shard in the routing table: proxies refuse its keys
//     (UNIT_UNAVAILABLE, retry later), backfills defer them, and the
//     shards' reconcilers leave them alone;
//  3. settle: wait until every reader of the table has seen the freeze and
//     finished the calls it began before (MoveOptions.Settle);
//  4. copy each bucket from the source's storage to the target's, entries
//     exactly as they are (dirstore.Import keeps their versions, so a
//     create that read an entry before the move meets the same
//     compare-and-swap after it), after dropping whatever an earlier
//     attempt left there;
//  5. verify each bucket: counts equal (CountBucket) and every entry equal;
//  6. switch: one table update gives r to the target and unfreezes it;
//  7. cleanup: delete the source's copies, once each bucket is read again
//     unchanged since its verification. They are deleted rather than left
//     because a stale copy is a hazard: a later move back would meet it,
//     counts would double, and nothing may ever read it again.
//
// A failure before the switch (including the caller's cancellation) undoes
// the move: r is unfrozen on its shard, which still holds it and lost
// nothing, and the target's partial copies are deleted, so a failed move
// costs its keys no more unavailability than it took. If the table cannot
// be changed to unfreeze it, r stays frozen and the error says so: run the
// same move again (it resumes from the freeze) or Abort. A move of buckets
// the target already holds finishes what a run cut short after its switch:
// it deletes the copies other shards still hold.
func (a *Admin) Move(ctx context.Context, r routing.BucketRange, to routing.ShardID, o MoveOptions) (*MoveResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m := &mover{a: a, o: o, r: r, res: &MoveResult{Buckets: r, To: to}, start: time.Now()}
	defer func() { m.res.TookMS = ms(time.Since(m.start)) }()
	var src, dst *dirstore.Store
	defer func() {
		for _, s := range []*dirstore.Store{src, dst} {
			if s != nil {
				s.Close()
			}
		}
	}()
	var holder *routing.DirectoryShard
	err := m.step("check", func() (string, error) {
		var err error
		if holder, err = a.holder(r); err != nil {
			return "", err
		}
		m.res.From = holder.Shard
		if holder.Shard == to {
			if setOf(holder.Frozen...).overlaps(r) {
				return "", paramErrorf("buckets %s are frozen on shard %d, which holds them: another move of them is under way; finish it, or abort it (--abort --to ITS_TARGET)", formatRange(r), to)
			}
			return fmt.Sprintf("buckets %s are on shard %d already", formatRange(r), to), nil
		}
		target, ok := a.Routes.Current().Directory.Shard(to)
		switch {
		case !ok:
			return "", paramErrorf("shard %d is not in the directory", to)
		case !target.Available:
			return "", paramErrorf("shard %d is masked (available false): make it available before moving buckets to it", to)
		}
		if src, err = a.openShard(ctx, holder.Shard); err != nil {
			return "", err
		}
		if dst, err = a.openShard(ctx, to); err != nil {
			return "", err
		}
		return fmt.Sprintf("buckets %s: shard %d → shard %d", formatRange(r), holder.Shard, to), nil
	})
	if err != nil {
		return m.res, err
	}
	if holder.Shard == to {
		m.res.AlreadyMoved = true
		return m.res, m.step("cleanup", func() (string, error) { return m.dropLeftovers(ctx) })
	}
	if err := m.step("freeze", func() (string, error) { return m.freeze(ctx) }); err != nil {
		return m.res, err
	}
	err = m.beforeSwitch(ctx, src, dst, holder)
	if err == nil {
		err = m.step("switch", func() (string, error) { return m.switchOver(ctx) })
	}
	if err != nil && !errors.Is(err, errSwitched) {
		if err := m.undo(ctx, dst, err); !errors.Is(err, errSwitched) {
			return m.res, err
		}
	}
	return m.res, m.step("cleanup", func() (string, error) { return m.cleanup(ctx, src) })
}

// errSwitched says that the range is on the target already: a switch whose
// answer was lost was made.
var errSwitched = errors.New("the buckets are on the target shard already")

// MoveOptions tunes Move. Start from DefaultMoveOptions.
type MoveOptions struct {
	// Settle is how long Move waits once the range is frozen before it
	// copies; 0: Propagation + ProxyCallTimeout × the source shard's
	// service replicas. A proxy checks the table before each call to a
	// shard, and such a call tries the shard's replicas in turn, each
	// bounded by its unit timeout: once the freeze has reached every
	// proxy and that long has passed, no write to the range is still on
	// its way to the source. The shards' reconcilers and a running
	// backfill check the table before each write the same way.
	Settle time.Duration
	// Propagation bounds how long a change of the routing table takes to
	// reach its readers (a file is polled every 200 ms; etcd is watched,
	// and checked every 500 ms): one second, as the table promises. A
	// reader cut off from etcd keeps its last table and is not covered:
	// move buckets while every proxy follows the table.
	Propagation time.Duration
	// ProxyCallTimeout is the proxies' bound on one call to one replica
	// (tradeunit proxy --unit-timeout).
	ProxyCallTimeout time.Duration
	// Page is how many entries one read, and one import, carries.
	Page int
	// Progress, if set, is told of each step once it ends.
	Progress func(MoveStep)

	// afterVerify, set by tests, runs between the verification and the
	// switch; an error fails the move there.
	afterVerify func() error
}

// DefaultMoveOptions settles for 1 s + 3 s per source replica (the
// proxies' default unit timeout) and copies 500 entries at a time.
func DefaultMoveOptions() MoveOptions {
	return MoveOptions{Propagation: time.Second, ProxyCallTimeout: 3 * time.Second, Page: 500}
}

// Validate reports a setting out of range; it changes nothing.
func (o MoveOptions) Validate() error {
	if o.Settle < 0 || o.Propagation <= 0 || o.ProxyCallTimeout <= 0 || o.Page < 1 {
		return paramErrorf("move: settle must not be negative; propagation, proxy call timeout and page must be positive")
	}
	return nil
}

// MoveResult says what a move did.
type MoveResult struct {
	Buckets routing.BucketRange `json:"buckets"`
	From    routing.ShardID     `json:"from"`
	To      routing.ShardID     `json:"to"`
	Copied  int64               `json:"copied"`  // entries copied and verified
	Deleted int64               `json:"deleted"` // copies deleted from shards that no longer hold them
	// AlreadyMoved: the target held the buckets already; the move only
	// cleaned up.
	AlreadyMoved bool `json:"already_moved,omitempty"`
	// Kept are buckets whose source copies were kept: they changed after
	// their verification (see Move's error).
	Kept     []int      `json:"kept,omitempty"`
	Revision int64      `json:"revision,omitempty"` // the routing table's revision of the switch
	Steps    []MoveStep `json:"steps"`
	TookMS   float64    `json:"took_ms"`
}

// MoveStep is one step of a move, as it went.
type MoveStep struct {
	Name   string  `json:"name"` // check, freeze, settle, copy, verify, switch, cleanup; undo, abort
	TookMS float64 `json:"took_ms"`
	Detail string  `json:"detail"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// mover is one run of Move or Abort.
type mover struct {
	a     *Admin
	o     MoveOptions
	r     routing.BucketRange
	res   *MoveResult
	start time.Time
	// digests are the source's buckets as verified.
	digests map[int]bucketDigest
}

// step runs one step and records it.
func (m *mover) step(name string, fn func() (string, error)) error {
	t0 := time.Now()
	detail, err := fn()
	if err != nil {
		detail = "failed: " + err.Error()
	}
	s := MoveStep{Name: name, TookMS: ms(time.Since(t0)), Detail: detail}
	m.res.Steps = append(m.res.Steps, s)
	if m.o.Progress != nil {
		m.o.Progress(s)
	}
	return err
}

// holder returns the one shard that holds every bucket of r.
func (a *Admin) holder(r routing.BucketRange) (*routing.DirectoryShard, error) {
	if r.From < 0 || r.To >= tradeunit.DirectoryBuckets || r.From > r.To {
		return nil, paramErrorf("buckets %d-%d: want a range within 0-%d", r.From, r.To, tradeunit.DirectoryBuckets-1)
	}
	d := a.Routes.Current().Directory
	if d == nil {
		return nil, paramErrorf("the routing table has no directory")
	}
	s, _ := d.ShardOf(r.From)
	for b := r.From; b <= r.To; b++ {
		if o, _ := d.ShardOf(b); o == nil || o.Shard != s.Shard {
			return nil, paramErrorf("buckets %s span shards %d and %d: move the buckets of one shard at a time", formatRange(r), s.Shard, o.Shard)
		}
	}
	return s, nil
}

// openShard opens a directory shard's storage, as the topology names it.
func (a *Admin) openShard(ctx context.Context, id routing.ShardID) (*dirstore.Store, error) {
	if a.Topology == nil {
		return nil, paramErrorf("no storage topology beside the routing table")
	}
	st, ok := a.Topology.Current().Shard(id)
	if !ok || !st.HasPrimary() {
		return nil, paramErrorf("shard %d has no primary in the storage topology", id)
	}
	s, err := dirstore.Open(ctx, st.Primary, a.Passwords)
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	return s, nil
}

func (m *mover) what(verb string) string {
	return fmt.Sprintf("directory move %s: buckets %s shard %d → %d", verb, formatRange(m.r), m.res.From, m.res.To)
}

// freeze freezes the range on its shard, unless it is frozen already (a
// move that stopped after its freeze, resumed).
func (m *mover) freeze(ctx context.Context) (string, error) {
	resumed := false
	t, err := m.a.update(ctx, m.what("freeze"), func(t *routing.Table) error {
		s, ok := t.Directory.Shard(m.res.From)
		if !ok || !setOf(s.Buckets...).covers(m.r) {
			return paramErrorf("shard %d no longer holds buckets %s", m.res.From, formatRange(m.r))
		}
		frozen := setOf(s.Frozen...)
		switch {
		case frozen.covers(m.r):
			resumed = true
		case frozen.overlaps(m.r):
			return paramErrorf("shard %d has buckets %s frozen, which overlap %s: another move is under way; finish or abort it first",
				m.res.From, FormatRanges(s.Frozen), formatRange(m.r))
		default:
			s.Frozen = plus(s.Frozen, m.r)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if resumed {
		return fmt.Sprintf("frozen already (resuming); table revision %d", t.Revision), nil
	}
	return fmt.Sprintf("buckets %s frozen on shard %d: their keys are refused until the switch; table revision %d", formatRange(m.r), m.res.From, t.Revision), nil
}

// beforeSwitch waits, copies and verifies. errSwitched: a run of this
// move was switched meanwhile.
func (m *mover) beforeSwitch(ctx context.Context, src, dst *dirstore.Store, holder *routing.DirectoryShard) error {
	settle := m.o.Settle
	if settle == 0 {
		settle = m.o.Propagation + m.o.ProxyCallTimeout*time.Duration(max(1, len(holder.LogicAddrs)))
	}
	if err := m.step("settle", func() (string, error) {
		t := time.NewTimer(settle)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
		return fmt.Sprintf("waited %v: every proxy has seen the freeze and ended its calls to shard %d", settle, m.res.From), nil
	}); err != nil {
		return err
	}
	if err := m.step("copy", func() (string, error) {
		for b := m.r.From; b <= m.r.To; b++ {
			n, err := copyBucket(ctx, src, dst, b, m.o.Page)
			if err != nil {
				return "", fmt.Errorf("bucket %d: %w", b, err)
			}
			m.res.Copied += n
		}
		return fmt.Sprintf("%d entries copied to shard %d", m.res.Copied, m.res.To), nil
	}); err != nil {
		return err
	}
	err := m.step("verify", func() (string, error) {
		m.digests = map[int]bucketDigest{}
		recopied := 0
		for b := m.r.From; b <= m.r.To; b++ {
			d, diff, err := compareBucket(ctx, src, dst, b, m.o.Page)
			if err == nil && diff != "" {
				// A write reached the source after the copy, which the
				// settle time should have excluded: copy the bucket again,
				// once.
				recopied++
				n, err := copyBucket(ctx, src, dst, b, m.o.Page)
				if err != nil {
					return "", fmt.Errorf("bucket %d: %w", b, err)
				}
				m.res.Copied += n
				d, diff, err = compareBucket(ctx, src, dst, b, m.o.Page)
			}
			switch {
			case err != nil:
				return "", fmt.Errorf("bucket %d: %w", b, err)
			case diff != "":
				return "", fmt.Errorf("bucket %d differs between shards %d and %d after copying it twice: %s", b, m.res.From, m.res.To, diff)
			}
			m.digests[b] = d
		}
		var total int64
		for _, d := range m.digests {
			total += d.n
		}
		m.res.Copied = total
		detail := fmt.Sprintf("%d buckets, %d entries: counts and entries equal on both shards", bucketCount([]routing.BucketRange{m.r}), total)
		if recopied > 0 {
			detail += fmt.Sprintf(" (%d buckets changed after the copy and were copied again)", recopied)
		}
		return detail, nil
	})
	if err != nil {
		return err
	}
	if m.o.afterVerify != nil {
		return m.o.afterVerify()
	}
	return nil
}

// switchOver gives the range to the target and unfreezes it, in one table
// update.
func (m *mover) switchOver(ctx context.Context) (string, error) {
	t, err := m.a.update(ctx, m.what("switch"), func(t *routing.Table) error {
		src, ok1 := t.Directory.Shard(m.res.From)
		dst, ok2 := t.Directory.Shard(m.res.To)
		switch {
		case ok2 && setOf(dst.Buckets...).covers(m.r):
			return errSwitched
		case !ok1 || !ok2 || !setOf(src.Buckets...).covers(m.r) || !setOf(src.Frozen...).covers(m.r):
			return fmt.Errorf("buckets %s are no longer frozen on shard %d: another operator changed them during the move", formatRange(m.r), m.res.From)
		}
		src.Buckets, src.Frozen = minus(src.Buckets, m.r), minus(src.Frozen, m.r)
		dst.Buckets = plus(dst.Buckets, m.r)
		return nil
	})
	if err != nil {
		return "", err
	}
	m.res.Revision = t.Revision
	return fmt.Sprintf("shard %d holds buckets %s, unfrozen: table revision %d", m.res.To, formatRange(m.r), t.Revision), nil
}

// cleanup deletes the source's copy of each bucket read unchanged since
// its verification. A bucket that changed got a write that the settle
// time did not cover: its copy is kept for the operator to compare.
func (m *mover) cleanup(ctx context.Context, src *dirstore.Store) (string, error) {
	for b := m.r.From; b <= m.r.To; b++ {
		d, err := digestBucket(ctx, src, b, m.o.Page)
		if err != nil {
			return "", fmt.Errorf("bucket %d: %w; run the move again to finish", b, err)
		}
		if want, ok := m.digests[b]; ok && d != want {
			m.res.Kept = append(m.res.Kept, b)
			continue
		}
		n, err := src.DeleteBucket(ctx, b)
		if err != nil {
			return "", fmt.Errorf("bucket %d: %w; run the move again to finish", b, err)
		}
		m.res.Deleted += n
	}
	if len(m.res.Kept) > 0 {
		return "", fmt.Errorf("the move is done (shard %d holds buckets %s), but buckets %v changed on shard %d after they were verified: "+
			"a write the settle time did not cover. Their entries there are kept: compare them with shard %d's (a later run of this move deletes them)",
			m.res.To, formatRange(m.r), m.res.Kept, m.res.From, m.res.To)
	}
	return fmt.Sprintf("%d copies deleted from shard %d", m.res.Deleted, m.res.From), nil
}

// dropLeftovers deletes the range's entries from every shard but the one
// that holds it: the copies a move left when it stopped after its switch.
func (m *mover) dropLeftovers(ctx context.Context) (string, error) {
	if m.a.Topology == nil {
		return "", paramErrorf("no storage topology beside the routing table")
	}
	detail := "no copies left on other shards"
	for _, st := range m.a.Topology.Current().Shards {
		if st.Shard == m.res.To || !st.HasPrimary() {
			continue
		}
		s, err := m.a.openShard(ctx, st.Shard)
		if err != nil {
			return "", err
		}
		var n int64
		for b := m.r.From; b <= m.r.To && err == nil; b++ {
			var d int64
			d, err = s.DeleteBucket(ctx, b)
			n += d
		}
		s.Close()
		if err != nil {
			return "", fmt.Errorf("shard %d: %w", st.Shard, err)
		}
		if n > 0 {
			m.res.Deleted += n
			detail = fmt.Sprintf("%d copies left by an earlier run deleted", m.res.Deleted)
		}
	}
	return detail, nil
}

// undo unfreezes the range on the source after a failure before the
// switch, and deletes the target's partial copies. If the switch turns
// out to have been made (its answer was lost), it returns errSwitched.
func (m *mover) undo(ctx context.Context, dst *dirstore.Store, cause error) error {
	// The caller's context may be what ended the move: undo regardless.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var undone error
	switched := false
	err := m.step("undo", func() (string, error) {
		if err := m.unfreeze(ctx, m.res.From); errors.Is(err, errSwitched) {
			switched = true
			return fmt.Sprintf("shard %d holds buckets %s: the switch was made (its answer was lost); finishing", m.res.To, formatRange(m.r)), nil
		} else if err != nil {
			return "", err
		}
		var n int64
		for b := m.r.From; b <= m.r.To; b++ {
			d, err := dst.DeleteBucket(ctx, b)
			if err != nil {
				undone = fmt.Errorf("; shard %d's partial copies are left (a later move deletes them first): %v", m.res.To, err)
				break
			}
			n += d
		}
		return fmt.Sprintf("buckets %s unfrozen on shard %d; %d partial copies deleted from shard %d", formatRange(m.r), m.res.From, n, m.res.To), nil
	})
	if switched {
		return errSwitched
	}
	if err != nil {
		return fmt.Errorf("move of buckets %s to shard %d failed: %w; and unfreezing failed (%v): the buckets stay FROZEN on shard %d, their keys refused: "+
			"run the same move again to resume, or with --abort to unfreeze", formatRange(m.r), m.res.To, cause, err, m.res.From)
	}
	msg := fmt.Sprintf("move of buckets %s to shard %d failed: %%w; nothing moved: shard %d still holds them, unfrozen", formatRange(m.r), m.res.To, m.res.From)
	if undone != nil {
		msg += undone.Error()
	}
	return fmt.Errorf(msg, cause)
}

// unfreeze removes the range from shard id's frozen buckets, if it holds
// them.
func (m *mover) unfreeze(ctx context.Context, id routing.ShardID) error {
	_, err := m.a.update(ctx, m.what("unfreeze"), func(t *routing.Table) error {
		if d, ok := t.Directory.Shard(m.res.To); ok && setOf(d.Buckets...).covers(m.r) {
			return errSwitched
		}
		s, ok := t.Directory.Shard(id)
		if !ok || !setOf(s.Buckets...).covers(m.r) {
			return fmt.Errorf("shard %d no longer holds buckets %s", id, formatRange(m.r))
		}
		s.Frozen = minus(s.Frozen, m.r)
		return nil
	})
	return err
}

// Abort ends a move of the range r to shard to that stopped before its
// switch: it unfreezes r on the shard that holds it and deletes the copies
// on to. Of o, only Progress is used. Errors: PARAM_ERROR when to holds r
// (the move is done).
func (a *Admin) Abort(ctx context.Context, r routing.BucketRange, to routing.ShardID, o MoveOptions) (*MoveResult, error) {
	m := &mover{a: a, o: o, r: r, res: &MoveResult{Buckets: r, To: to}, start: time.Now()}
	defer func() { m.res.TookMS = ms(time.Since(m.start)) }()
	holder, err := a.holder(r)
	if err != nil {
		return m.res, err
	}
	m.res.From = holder.Shard
	if holder.Shard == to {
		return m.res, paramErrorf("shard %d holds buckets %s: that move is done; nothing to abort", to, formatRange(r))
	}
	dst, err := a.openShard(ctx, to)
	if err != nil {
		return m.res, err
	}
	defer dst.Close()
	return m.res, m.step("abort", func() (string, error) {
		frozen := setOf(holder.Frozen...).overlaps(r)
		if frozen {
			if err := m.unfreeze(ctx, holder.Shard); err != nil {
				return "", err
			}
		}
		for b := r.From; b <= r.To; b++ {
			n, err := dst.DeleteBucket(ctx, b)
			if err != nil {
				return "", err
			}
			m.res.Deleted += n
		}
		if !frozen {
			return fmt.Sprintf("buckets %s were not frozen; %d copies deleted from shard %d", formatRange(r), m.res.Deleted, to), nil
		}
		return fmt.Sprintf("buckets %s unfrozen on shard %d; %d copies deleted from shard %d", formatRange(r), holder.Shard, m.res.Deleted, to), nil
	})
}
