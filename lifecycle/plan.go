package lifecycle

import (
	"context"
	"fmt"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// CopyRate is the live copy's rate that a plan's estimate assumes, in rows
// of the unit per second: on SQLite, a 55k-row unit under update load was
// copied in a 2.7 s copying step (tradeunit bench cool --storage sqlite
// --orders 20000, 2026-12-03, bench/RESULTS.md), rounded down. MariaDB's
// was a third of it on the same machine.
const CopyRate = 20000

// Plan is what a move would do, for a dry run.
type Plan struct {
	Unit     tradeunit.UnitID
	Step     routing.Temperature // where the unit stands now
	From, To dsn.DSN
	Steps    []string // what is left to do, in order
	Rows     int64
	Bytes    int64
	Tables   []sqlstore.TableSize
	Rate     float64       // rows per second the estimate assumes
	Estimate time.Duration // of the live copy
}

// Plan says what Move would do to unit id, reading the sizes of its data
// and changing nothing.
func (m *Mover) Plan(ctx context.Context, id tradeunit.UnitID, to dsn.DSN) (*Plan, error) {
	u, st, err := m.state(id)
	if err != nil {
		return nil, err
	}
	if to == (dsn.DSN{}) {
		to = st.ColdCopy
	}
	p := &Plan{Unit: id, Step: u.Temperature, From: st.Primary, To: to, Rate: CopyRate}
	if st.Previous != nil {
		p.From = st.Previous.Primary
	}
	type step struct {
		step routing.Temperature
		what string
	}
	all := []step{
		{routing.Warm, fmt.Sprintf("record the cold copy %s in the storage topology; check it is empty or this unit's", to)},
		{routing.Copying, fmt.Sprintf("copy every table range by range while the unit serves (%d passes, %d rows a range)", m.cfg.LivePasses, m.cfg.RangeRows)},
		{routing.Freezing, fmt.Sprintf("freeze the old storage (updates wait, at most %s) and copy what changed since the last live pass", m.cfg.MaxFreeze)},
		{routing.Verifying, "compare the changed rows on both sides, then point the storage mapping at the copy; traffic follows"},
		{routing.Cold, "the cold copy serves; the old data is kept, so the move can be undone (--undo)"},
	}
	if m.cfg.Retire {
		all = append(all, step{routing.Retired, fmt.Sprintf("delete the old data on %s: final", p.From)})
	}
	started := false
	for _, s := range all {
		if s.step == u.Temperature || (u.Temperature == routing.Hot && s.step == routing.Warm) {
			started = true
		}
		if started {
			p.Steps = append(p.Steps, string(s.step)+": "+s.what)
		}
	}
	if u.Temperature == routing.Hot {
		p.Steps = append([]string{"the unit is hot: warm it first (tradeunit admin unit set --temperature warm)"}, p.Steps...)
	}
	if st.HasPrimary() && !st.Cold {
		src, err := sqlstore.OpenReadOnly(ctx, st.Primary, m.deps.Passwords)
		if err != nil {
			return nil, err
		}
		defer src.Close()
		size, err := src.Size(ctx)
		if err != nil {
			return nil, err
		}
		p.Rows, p.Bytes, p.Tables = size.Rows, size.Bytes, size.Tables
		// The first pass copies every row; the later ones only what
		// changed meanwhile, a small share.
		p.Estimate = time.Duration(float64(p.Rows) / p.Rate * float64(time.Second))
	}
	return p, nil
}
