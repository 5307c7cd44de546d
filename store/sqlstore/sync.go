package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tradeunit"
)

// ErrCopyDiffers is the error of a VerifyOnly Sync that found the copy
// different from its source (see SyncReport for where).
var ErrCopyDiffers = errors.New("the copy differs from its source")

// SyncOptions tune Sync. The zero value is a full sync with the default
// range size and no pause.
type SyncOptions struct {
	// RangeRows is how many of the source's rows a range holds (it may
	// hold more when rows share a range key); 0 means 500.
	RangeRows int
	// Pause is slept between ranges, so that a unit serving from the
	// source is not starved of its storage; 0: none.
	Pause time.Duration
	// VerifyOnly compares and never writes: each differing range is
	// counted, and Sync returns ErrCopyDiffers if any differs.
	VerifyOnly bool
	// Progress, if set, is called after each range.
	Progress func(SyncProgress)
}

// DefaultRangeRows is the range size of SyncOptions.RangeRows 0.
const DefaultRangeRows = 500

// SyncProgress is how far a Sync has come.
type SyncProgress struct {
	Table string // the table being synced
	// Rows and Bytes were copied so far, RowsChecked compared so far
	// (source rows), all tables together.
	Rows, Bytes, RowsChecked int64
	// TotalRows is the source's row count when Sync started, all tables
	// together: for an ETA, not exact (the source may be serving).
	TotalRows int64
}

// SyncReport is what a Sync compared and copied.
type SyncReport struct {
	Tables                                        []TableSync
	RowsChecked, RowsCopied, BytesCopied          int64
	RangesCompared, RangesCopied, RangesDiffering int
	// CountersDiffering counts tables whose copy would hand out an id the
	// source already handed out (its AUTOINCREMENT counter is behind);
	// Sync raises them unless VerifyOnly.
	CountersDiffering int
}

// TableSync is one table's part of a SyncReport.
type TableSync struct {
	Name string
	// Rows and Checksum are the source's, as read range by range; DstRows
	// and DstChecksum the copy's, after the ranges copied. The checksum
	// is the sum of the rows' hashes (independent of order and of range
	// boundaries), so the two sides compare whole.
	Rows, DstRows                                 int64
	Checksum, DstChecksum                         uint64
	RangesCompared, RangesCopied, RangesDiffering int
	// NextID is the source's next AUTOINCREMENT id (0: the table has
	// none).
	NextID int64
}

// Sync makes dst's data equal src's, table by table and range by range:
// the ranges are cut from src in key order, every opt.RangeRows rows, the
// last one open-ended (so that rows dst has past src's last key are
// deleted). A range whose row count or checksum differ between the two is
// replaced on dst in one transaction: its key interval deleted and src's
// rows inserted with their own keys. AUTOINCREMENT counters are raised on
// dst to src's. So Sync is idempotent and resumable: run again after a
// crash, a cancellation or changes on src, it copies only the ranges that
// differ.
//
// src may be serving (a copy taken while it serves is as good as the
// ranges were when read); to make dst exactly equal, Freeze src and Sync
// again, then Sync with VerifyOnly. dst must serve no one while Sync
// writes: its writes are not fenced (dst may even be frozen), and foreign
// keys are not checked while a range is replaced (a range of orders may be
// copied before the refunds that reference it are deleted). The tables are
// dataTables: unit_lifecycle stays each storage's own.
func Sync(ctx context.Context, src, dst *Store, opt SyncOptions) (SyncReport, error) {
	var rep SyncReport
	sy, err := newSyncer(ctx, src, dst, opt, &rep)
	if err != nil {
		return rep, err
	}
	for _, t := range dataTables {
		if err := sy.table(ctx, t); err != nil {
			return rep, fmt.Errorf("sync %s: %w", t.name, err)
		}
	}
	return rep, sy.verdict()
}

// newSyncer checks a Sync's arguments and sets it up.
func newSyncer(ctx context.Context, src, dst *Store, opt SyncOptions, rep *SyncReport) (*syncer, error) {
	if src == dst {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "sync: source and copy are the same store")
	}
	if opt.RangeRows < 0 {
		return nil, tradeunit.Errorf(tradeunit.CodeParamError, "sync: range rows must not be negative, got %d", opt.RangeRows)
	}
	if opt.RangeRows == 0 {
		opt.RangeRows = DefaultRangeRows
	}
	if err := checkSameUnit(ctx, src, dst); err != nil {
		return nil, err
	}
	sy := &syncer{src: src, dst: dst, opt: opt, rep: rep}
	if opt.Progress != nil {
		size, err := src.Size(ctx)
		if err != nil {
			return nil, err
		}
		sy.total = size.Rows
	}
	return sy, nil
}

// verdict is a verification's result: ErrCopyDiffers if anything differed.
func (sy *syncer) verdict() error {
	if rep := sy.rep; sy.opt.VerifyOnly && (rep.RangesDiffering > 0 || rep.CountersDiffering > 0) {
		return fmt.Errorf("verify: %d of %d ranges and %d id counters differ: %w",
			rep.RangesDiffering, rep.RangesCompared, rep.CountersDiffering, ErrCopyDiffers)
	}
	return nil
}

// checkSameUnit refuses a copy that holds another unit's data: Sync would
// replace it.
func checkSameUnit(ctx context.Context, src, dst *Store) error {
	srcUnit, err := src.boundUnit(ctx)
	if err != nil {
		return err
	}
	dstUnit, err := dst.boundUnit(ctx)
	if err != nil {
		return err
	}
	if dstUnit != 0 && dstUnit != srcUnit {
		return &tradeunit.Error{Code: tradeunit.CodeInvalidRequest, Op: "store.Sync",
			Message: fmt.Sprintf("the copy holds unit %d's data, the source unit %d's: sync would replace it", dstUnit, srcUnit)}
	}
	return nil
}

// boundUnit is the unit the storage holds, 0 if none.
func (s *Store) boundUnit(ctx context.Context) (tradeunit.UnitID, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, "SELECT unit_id FROM unit_identity WHERE id = 1").Scan(&id)
	if err != nil && !isNoRows(err) {
		return 0, s.fail("store.Sync", err)
	}
	return tradeunit.UnitID(id), nil
}

type syncer struct {
	src, dst *Store
	opt      SyncOptions
	rep      *SyncReport
	total    int64
}

// table syncs one table, range by range.
func (sy *syncer) table(ctx context.Context, t table) error {
	sy.rep.Tables = append(sy.rep.Tables, TableSync{Name: t.name})
	ts := &sy.rep.Tables[len(sy.rep.Tables)-1]
	var lo []any
	for {
		hi, err := t.boundary(ctx, sy.src.read, lo, sy.opt.RangeRows)
		if err != nil {
			return sy.src.fail("store.Sync", err)
		}
		if err := sy.syncRange(ctx, t, ts, lo, hi); err != nil {
			return err
		}
		if hi == nil {
			break
		}
		lo = hi
		if sy.opt.Pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(sy.opt.Pause):
			}
		}
	}
	if t.autoID {
		return sy.counter(ctx, t, ts)
	}
	return nil
}

// syncRange compares the range (lo, hi] and replaces it on dst if it
// differs.
func (sy *syncer) syncRange(ctx context.Context, t table, ts *TableSync, lo, hi []any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	srcRows, err := t.readRange(ctx, sy.src.read, lo, hi)
	if err != nil {
		return sy.src.fail("store.Sync", err)
	}
	dstRows, err := t.readRange(ctx, sy.dst.read, lo, hi)
	if err != nil {
		return sy.dst.fail("store.Sync", err)
	}
	if err := t.checkOrder("source", srcRows, lo, hi); err != nil {
		return err
	}
	if err := t.checkOrder("copy", dstRows, lo, hi); err != nil {
		return err
	}
	return sy.compare(t, ts, srcRows, dstRows, func() error { return sy.dst.replaceRange(ctx, t, lo, hi, srcRows) })
}

// compare counts one range (srcRows on the source, dstRows on the copy)
// and, if they differ and Sync may write, has replace make the copy's
// rows the source's.
func (sy *syncer) compare(t table, ts *TableSync, srcRows, dstRows [][]any, replace func() error) error {
	srcSum, size := rangeSum(srcRows)
	dstSum, _ := rangeSum(dstRows)
	ts.RangesCompared++
	sy.rep.RangesCompared++
	ts.Rows += int64(len(srcRows))
	ts.Checksum += srcSum
	sy.rep.RowsChecked += int64(len(srcRows))
	if len(srcRows) != len(dstRows) || srcSum != dstSum {
		ts.RangesDiffering++
		sy.rep.RangesDiffering++
		if !sy.opt.VerifyOnly {
			if err := replace(); err != nil {
				return err
			}
			ts.RangesCopied++
			sy.rep.RangesCopied++
			sy.rep.RowsCopied += int64(len(srcRows))
			sy.rep.BytesCopied += size
			dstRows, dstSum = srcRows, srcSum
		}
	}
	ts.DstRows += int64(len(dstRows))
	ts.DstChecksum += dstSum
	if sy.opt.Progress != nil {
		sy.opt.Progress(SyncProgress{Table: t.name, Rows: sy.rep.RowsCopied, Bytes: sy.rep.BytesCopied,
			RowsChecked: sy.rep.RowsChecked, TotalRows: sy.total})
	}
	return nil
}
