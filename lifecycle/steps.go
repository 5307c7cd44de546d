package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// maxFreezes bounds how often one run freezes the unit and gives up
// because the final copy took longer than MaxFreeze: a unit that busy is
// not cold yet.
const maxFreezes = 3

// start records where the copy goes (the topology first: the storage
// mapping before the step traffic sees) and begins copying.
func (m *Mover) start(ctx context.Context, id tradeunit.UnitID, st routing.UnitStorage, to dsn.DSN) (string, error) {
	switch {
	case to == (dsn.DSN{}):
		return "", tradeunit.Errorf(tradeunit.CodeParamError, "unit %d: name the cold storage to copy to (--to DSN)", id)
	case st.ColdCopy != (dsn.DSN{}) && st.ColdCopy != to:
		return "", tradeunit.Errorf(tradeunit.CodeInvalidRequest, "unit %d is already being copied to %s: resume that move, or abort it first", id, st.ColdCopy)
	}
	if to.Scheme == dsn.SQLite {
		if err := os.MkdirAll(filepath.Dir(to.Path), 0o755); err != nil {
			return "", fmt.Errorf("cold storage %s: %w", to, err)
		}
	}
	// The copy must be empty or this unit's own (an earlier run's): a
	// storage bound to another unit is refused here, before any row moves.
	dst, err := m.open(ctx, to)
	if err != nil {
		return "", err
	}
	err = dst.BindUnit(ctx, id)
	dst.Close()
	if err != nil {
		return "", fmt.Errorf("cold storage %s: %w", to, err)
	}
	if err := m.setStorage(ctx, id, "cold copy to "+to.String(), func(u *routing.UnitStorage) error {
		u.ColdCopy = to
		return nil
	}); err != nil {
		return "", err
	}
	return "copying to " + to.String(), m.setStep(ctx, id, routing.Copying)
}

// copyLive copies the unit's data while it serves, in passes: each later
// pass copies only the ranges that changed since.
func (m *Mover) copyLive(ctx context.Context, r *Report, id tradeunit.UnitID, st routing.UnitStorage) (string, error) {
	src, dst, err := m.openBoth(ctx, st)
	if err != nil {
		return "", err
	}
	defer src.Close()
	defer dst.Close()
	// A run that resumes with the old storage frozen (killed in the
	// freeze) thaws it: the live copy must not hold updates up. The copy
	// may be frozen by a switch that was given up.
	if err := src.Unfreeze(ctx); err != nil {
		return "", err
	}
	if err := dst.Unfreeze(ctx); err != nil {
		return "", err
	}
	var rows int64
	for pass := range m.cfg.LivePasses {
		if pass == m.cfg.LivePasses-1 {
			if err := m.markChanges(ctx, id, src); err != nil {
				return "", err
			}
		}
		rep, err := sqlstore.Sync(ctx, src, dst, sqlstore.SyncOptions{RangeRows: m.cfg.RangeRows, Pause: m.cfg.Pause,
			Progress: m.progress(id, routing.Copying)})
		if err != nil {
			return "", err
		}
		addSync(&r.Copied, rep)
		rows += rep.RowsCopied
	}
	return fmt.Sprintf("%d rows copied live", rows), m.setStep(ctx, id, routing.Freezing)
}

// markChanges records, before the last live pass, the old storage's last
// outbox event: every change after it writes a later event, so the freeze
// copies only the orders those name (sqlstore.SyncChanged), whatever the
// unit's size. It is read under a freeze of a few milliseconds, so that no
// write transaction in flight commits an earlier event later.
func (m *Mover) markChanges(ctx context.Context, id tradeunit.UnitID, src *sqlstore.Store) error {
	if err := src.Freeze(ctx); err != nil {
		return err
	}
	last, err := src.LastEventID(ctx)
	if uerr := src.Unfreeze(ctx); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	return m.setStorage(ctx, id, fmt.Sprintf("cold copy: changes after outbox event %d", last), func(u *routing.UnitStorage) error {
		u.ColdCopyAfter = last
		return nil
	})
}

// syncFrozen brings the copy up to date while the old storage is frozen:
// only what changed since the last live pass began, when that is known.
func syncFrozen(ctx context.Context, src, dst *sqlstore.Store, st routing.UnitStorage, opt sqlstore.SyncOptions) (sqlstore.SyncReport, error) {
	if st.ColdCopyAfter > 0 {
		return sqlstore.SyncChanged(ctx, src, dst, st.ColdCopyAfter, opt)
	}
	return sqlstore.Sync(ctx, src, dst, opt)
}

// freeze stops the old storage's changes and copies what changed since
// the live copy, within MaxFreeze of the freeze.
func (m *Mover) freeze(ctx context.Context, r *Report, id tradeunit.UnitID, st routing.UnitStorage) (string, error) {
	src, dst, err := m.openBoth(ctx, st)
	if err != nil {
		return "", err
	}
	defer src.Close()
	defer dst.Close()
	if err := src.Freeze(ctx); err != nil {
		return "", err
	}
	fctx, cancel, err := m.withinFreeze(ctx, src)
	if err != nil {
		return "", err
	}
	defer cancel()
	rep, err := syncFrozen(fctx, src, dst, st, sqlstore.SyncOptions{RangeRows: m.cfg.RangeRows, Progress: m.progress(id, routing.Freezing)})
	if err != nil {
		return m.thaw(ctx, r, id, src, err)
	}
	addSync(&r.Copied, rep)
	return fmt.Sprintf("%d rows copied frozen", rep.RowsCopied), m.setStep(ctx, id, routing.Verifying)
}

// withinFreeze bounds ctx by MaxFreeze from the moment src was frozen
// (an earlier run's freeze counts from when it began).
func (m *Mover) withinFreeze(ctx context.Context, src *sqlstore.Store) (context.Context, context.CancelFunc, error) {
	frozen, at, err := src.Frozen(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !frozen {
		return nil, nil, errors.New("lifecycle: the old storage is not frozen")
	}
	fctx, cancel := context.WithDeadline(ctx, at.Add(m.cfg.MaxFreeze))
	return fctx, cancel, nil
}

// thaw handles a final copy or verification that failed under the freeze:
// past MaxFreeze, it unfreezes the old storage and goes back to the live
// copy (at most maxFreezes times in one run); any other failure is
// returned with the storage still frozen, for the next run to resume.
func (m *Mover) thaw(ctx context.Context, r *Report, id tradeunit.UnitID, src *sqlstore.Store, err error) (string, error) {
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return "", err
	}
	if uerr := src.Unfreeze(ctx); uerr != nil {
		return "", errors.Join(err, uerr)
	}
	if uerr := m.setStep(ctx, id, routing.Copying); uerr != nil {
		return "", errors.Join(err, uerr)
	}
	if r.thawed++; r.thawed >= maxFreezes {
		return "", fmt.Errorf("the final copy took longer than the %s freeze bound %d times: the unit is too busy to cool now", m.cfg.MaxFreeze, r.thawed)
	}
	return fmt.Sprintf("the final copy took longer than %s: unfrozen, copying live again", m.cfg.MaxFreeze), nil
}

// verifyAndSwitch compares both sides range by range and, once they are
// equal, points the unit's storage mapping at the copy (traffic follows:
// the logic services switch as they see the topology) and records the
// unit cold.
func (m *Mover) verifyAndSwitch(ctx context.Context, r *Report, id tradeunit.UnitID, st routing.UnitStorage) (string, error) {
	src, dst, err := m.openBoth(ctx, st)
	if err != nil {
		return "", err
	}
	defer src.Close()
	defer dst.Close()
	fctx, cancel, err := m.withinFreeze(ctx, src)
	if err != nil {
		return "", err
	}
	defer cancel()
	_, frozenAt, _ := src.Frozen(ctx)
	verify := sqlstore.SyncOptions{RangeRows: m.cfg.RangeRows, VerifyOnly: true, Progress: m.progress(id, routing.Verifying)}
	rep, err := syncFrozen(fctx, src, dst, st, verify)
	if errors.Is(err, sqlstore.ErrCopyDiffers) {
		// A range changed after the final copy read it: nothing can
		// change now, so one repair and one more comparison settle it.
		m.deps.Logger.Warn("lifecycle: ranges differ after the final copy; repairing", "unit", id, "ranges", rep.RangesDiffering)
		if _, err = syncFrozen(fctx, src, dst, st, sqlstore.SyncOptions{RangeRows: m.cfg.RangeRows}); err == nil {
			rep, err = syncFrozen(fctx, src, dst, st, verify)
		}
	}
	if err != nil {
		return m.thaw(ctx, r, id, src, err)
	}
	// The copy is frozen too until every logic service reads it (see
	// confirm.go).
	marker := markerOf(frozenAt)
	if err := markMoved(fctx, id, dst, marker); err != nil {
		return m.thaw(ctx, r, id, src, err)
	}
	if err := dst.Freeze(fctx); err != nil {
		return m.thaw(ctx, r, id, src, err)
	}
	if err := m.setStorage(ctx, id, "switch to cold copy "+st.ColdCopy.String(), func(u *routing.UnitStorage) error {
		prev := u.Storage
		u.Storage = routing.Storage{Primary: u.ColdCopy}
		u.Previous, u.ColdCopy, u.ColdCopyAfter, u.Cold = &prev, dsn.DSN{}, 0, true
		return nil
	}); err != nil {
		return "", err
	}
	confirmed, err := m.thawCopy(ctx, id, dst, marker)
	if err != nil {
		return "", err
	}
	r.FreezeWindow = time.Since(frozenAt)
	scope := "every row"
	if st.ColdCopyAfter > 0 {
		scope = fmt.Sprintf("the orders changed after outbox event %d and the small tables", st.ColdCopyAfter)
	}
	note := fmt.Sprintf("%d rows (%s) equal on both sides; storage mapping switched, %s; updates resumed %s after the freeze",
		rep.RowsChecked, scope, confirmed, r.FreezeWindow.Round(time.Millisecond))
	return note, m.setStep(ctx, id, routing.Cold)
}

// thawCopy unfreezes the cold copy once every logic service reads it, or
// after Settle at most.
func (m *Mover) thawCopy(ctx context.Context, id tradeunit.UnitID, dst *sqlstore.Store, marker string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, m.cfg.Settle)
	confirmed, err := m.confirmSwitch(cctx, id, marker)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		// A logic service that has not switched within Settle is cut off
		// from the routing table: it reads a frozen storage, writes
		// nothing, and its reads stop at its next topology reload.
		m.deps.Logger.Warn("lifecycle: not every logic service confirmed the switch; thawing the copy anyway", "unit", id, "err", err)
		confirmed = fmt.Sprintf("not confirmed by all within %s (%v)", m.cfg.Settle, err)
	}
	return confirmed, dst.Unfreeze(ctx)
}

// recordSwitch finishes a switch a killed run made: the copy thaws once the
// logic services read it, and the table records the unit cold.
func (m *Mover) recordSwitch(ctx context.Context, id tradeunit.UnitID, st routing.UnitStorage) (string, error) {
	cold, err := m.open(ctx, st.Primary)
	if err != nil {
		return "", err
	}
	defer cold.Close()
	note := "the switch was made; recording it"
	if frozen, _, err := cold.Frozen(ctx); err != nil {
		return "", err
	} else if frozen && st.Previous != nil {
		old, err := m.open(ctx, st.Previous.Primary)
		if err != nil {
			return "", err
		}
		_, frozenAt, err := old.Frozen(ctx)
		old.Close()
		if err != nil {
			return "", err
		}
		confirmed, err := m.thawCopy(ctx, id, cold, markerOf(frozenAt))
		if err != nil {
			return "", err
		}
		note += "; " + confirmed
	}
	return note, m.setStep(ctx, id, routing.Cold)
}

// retire deletes the data the unit left behind and records it retired.
func (m *Mover) retire(ctx context.Context, r *Report, id tradeunit.UnitID, st routing.UnitStorage) (string, error) {
	if st.Previous != nil && st.Previous.HasPrimary() {
		old, err := m.open(ctx, st.Previous.Primary)
		if err != nil {
			return "", err
		}
		err = old.DeleteData(ctx, m.cfg.RangeRows, func(n int64) { r.Deleted = n })
		old.Close()
		if err != nil {
			return "", err
		}
	}
	if err := m.setStorage(ctx, id, "retire previous storage", func(u *routing.UnitStorage) error {
		u.Previous = nil
		return nil
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d rows of the old storage deleted", r.Deleted), m.setStep(ctx, id, routing.Retired)
}

// Abort undoes a move that has not switched yet: the old storage is
// unfrozen, the cold copy forgotten (its data stays where it is) and the
// unit warm again. A unit already cold is moved back by Undo.
func (m *Mover) Abort(ctx context.Context, id tradeunit.UnitID) error {
	u, st, err := m.state(id)
	if err != nil {
		return err
	}
	if st.Cold || u.Temperature.IsCold() {
		return tradeunit.Errorf(tradeunit.CodeInvalidRequest, "unit %d has switched to its cold copy already: undo the move instead", id)
	}
	if st.HasPrimary() {
		src, err := m.open(ctx, st.Primary)
		if err != nil {
			return err
		}
		err = src.Unfreeze(ctx)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := m.setStorage(ctx, id, "abort the cold copy", func(u *routing.UnitStorage) error {
		u.ColdCopy, u.ColdCopyAfter = dsn.DSN{}, 0
		return nil
	}); err != nil {
		return err
	}
	return m.setStep(ctx, id, routing.Warm)
}

// Undo moves a cold unit whose old data is still kept back to it: the cold
// copy is frozen, what changed on it is copied back, and the mapping points
// at the old storage again (the unit is warm). After Retire it is too late.
func (m *Mover) Undo(ctx context.Context, id tradeunit.UnitID) error {
	u, st, err := m.state(id)
	if err != nil {
		return err
	}
	if u.Temperature == routing.Retired || st.Previous == nil {
		return tradeunit.Errorf(tradeunit.CodeInvalidRequest, "unit %d keeps no old storage to move back to (it is %s)", id, u.Temperature)
	}
	if !st.Cold {
		return m.Abort(ctx, id)
	}
	cold, err := m.open(ctx, st.Primary)
	if err != nil {
		return err
	}
	defer cold.Close()
	old, err := m.open(ctx, st.Previous.Primary)
	if err != nil {
		return err
	}
	defer old.Close()
	if err := cold.Freeze(ctx); err != nil {
		return err
	}
	if _, err := sqlstore.Sync(ctx, cold, old, sqlstore.SyncOptions{RangeRows: m.cfg.RangeRows}); err != nil {
		return err
	}
	if _, err := sqlstore.Sync(ctx, cold, old, sqlstore.SyncOptions{RangeRows: m.cfg.RangeRows, VerifyOnly: true}); err != nil {
		return err
	}
	if err := old.Unfreeze(ctx); err != nil {
		return err
	}
	if err := m.setStorage(ctx, id, "undo the move to cold storage", func(u *routing.UnitStorage) error {
		u.Storage, u.Previous, u.Cold = *u.Previous, nil, false
		return nil
	}); err != nil {
		return err
	}
	return m.setStep(ctx, id, routing.Warm)
}
