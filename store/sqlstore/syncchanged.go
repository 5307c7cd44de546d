package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"tradeunit"
)

// SyncChanged is Sync limited to what can have changed on src since its
// outbox event afterEvent, for a copy that Sync made equal to src as it was
// then: the orders that later events name (every change of an order writes
// its event in the same transaction, see insertEvent), with their refunds
// and events; the probe merchant's orders on either side (the janitor
// deletes them, events and all, without an event); and the small tables
// (identity, sequences, relay leases, superseded attempts) whole. Its cost
// is that of the changes, not of the unit: it is what runs while src is
// frozen. afterEvent must have been read when no write transaction was in
// flight on src (under a freeze), so that every later change has a later
// event. With VerifyOnly it compares the same rows and returns
// ErrCopyDiffers if any differ.
func SyncChanged(ctx context.Context, src, dst *Store, afterEvent int64, opt SyncOptions) (SyncReport, error) {
	var rep SyncReport
	sy, err := newSyncer(ctx, src, dst, opt, &rep)
	if err != nil {
		return rep, err
	}
	keys, err := changedOrders(ctx, src, dst, afterEvent)
	if err != nil {
		return rep, err
	}
	for _, t := range dataTables {
		if !t.perOrder() {
			if err := sy.table(ctx, t); err != nil {
				return rep, fmt.Errorf("sync %s: %w", t.name, err)
			}
			continue
		}
		rep.Tables = append(rep.Tables, TableSync{Name: t.name})
		ts := &rep.Tables[len(rep.Tables)-1]
		for i := 0; i < len(keys); i += keysPerRead {
			if err := sy.syncOrders(ctx, t, ts, keys[i:min(i+keysPerRead, len(keys))]); err != nil {
				return rep, fmt.Errorf("sync %s: %w", t.name, err)
			}
		}
		if t.autoID {
			if err := sy.counter(ctx, t, ts); err != nil {
				return rep, err
			}
		}
	}
	return rep, sy.verdict()
}

// perOrder reports whether t's rows belong to an order (orders, refunds,
// events): SyncChanged syncs those order by order.
func (t table) perOrder() bool {
	return slices.ContainsFunc(t.cols, func(c column) bool { return c.name == "order_no" })
}

// changedOrders lists, sorted, the orders SyncChanged syncs.
func changedOrders(ctx context.Context, src, dst *Store, afterEvent int64) ([]string, error) {
	const op = "store.SyncChanged"
	set := map[string]bool{}
	add := func(s *Store, query string, args ...any) error {
		rows, err := s.read.QueryContext(ctx, query, args...)
		if err != nil {
			return s.fail(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var no string
			if err := rows.Scan(&no); err != nil {
				return s.fail(op, err)
			}
			set[no] = true
		}
		return rows.Err()
	}
	if err := add(src, "SELECT DISTINCT order_no FROM order_events WHERE id > ?", afterEvent); err != nil {
		return nil, err
	}
	for _, s := range []*Store{src, dst} {
		if err := add(s, "SELECT order_no FROM orders WHERE mchid = ?", tradeunit.ProbeMchid); err != nil {
			return nil, err
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// keysPerRead is how many orders one read of SyncChanged asks for: one
// statement and one transaction for many orders, not each its own (on
// MariaDB a commit each would make the freeze long).
const keysPerRead = 200

// syncOrders compares t's rows of each of the orders nos on both sides, and
// replaces on the copy, in one transaction, those of the orders that differ.
func (sy *syncer) syncOrders(ctx context.Context, t table, ts *TableSync, nos []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	const op = "store.SyncChanged"
	cond, args := inOrders(nos)
	srcRows, err := t.readWhere(ctx, sy.src.read, cond, args)
	if err != nil {
		return sy.src.fail(op, err)
	}
	dstRows, err := t.readWhere(ctx, sy.dst.read, cond, args)
	if err != nil {
		return sy.dst.fail(op, err)
	}
	col := slices.IndexFunc(t.cols, func(c column) bool { return c.name == "order_no" })
	bySrc, byDst := groupBy(srcRows, col), groupBy(dstRows, col)
	var differ []string
	var rows [][]any
	for _, no := range nos {
		// Compared order by order, so the report counts orders; the
		// replacement of those that differ is one transaction.
		err := sy.compare(t, ts, bySrc[no], byDst[no], func() error {
			differ, rows = append(differ, no), append(rows, bySrc[no]...)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(differ) == 0 {
		return nil
	}
	cond, args = inOrders(differ)
	return sy.dst.replaceWhere(ctx, t, cond, args, rows)
}

// inOrders is the condition "order_no IN (nos...)".
func inOrders(nos []string) (string, []any) {
	args := make([]any, len(nos))
	for i, no := range nos {
		args[i] = no
	}
	return "order_no IN (?" + strings.Repeat(", ?", len(nos)-1) + ")", args
}

// groupBy groups rows by their string column col.
func groupBy(rows [][]any, col int) map[string][][]any {
	out := map[string][][]any{}
	for _, r := range rows {
		k := r[col].(string)
		out[k] = append(out[k], r)
	}
	return out
}
