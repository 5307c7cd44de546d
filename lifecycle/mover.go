// Package lifecycle moves transaction units along their lifecycle (seed 000
// §5.4): a hot unit takes new orders; a warm one serves its orders but takes
// no new ones; once its traffic has cooled, its whole data set is copied to
// cold storage, the storage mapping is pointed at the copy, and the old data
// is deleted, leaving its storage free for a fresh unit.
//
// The Mover does one unit's move, step by step (the temperatures of package
// routing): copying → freezing → verifying → cold → retired. Every step is
// recorded in the routing table (the public step) and the storage topology
// (where the data is) before the next begins, so a Mover killed at any point
// resumes where it stopped, and every step before the old data is deleted
// can be undone (Abort). The Controller applies the policy: which unit to
// warm, which to cool, and when to add a fresh one.
//
// The order of the steps differs from a freeze-then-copy: the bulk of the
// data is copied while the unit serves (copying), and only what changed
// since is copied under the freeze, so the freeze window — the time an
// update waits — depends on the traffic during the copy, not on the unit's
// size.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// Config holds a Mover's settings. Start from DefaultConfig.
type Config struct {
	// RangeRows is how many rows one range of the copy holds: the unit of
	// comparison (a checksum each side) and of repair.
	RangeRows int
	// Pause is the rest between two ranges of the live copy, so that the
	// unit's own traffic is not starved; the copy under the freeze never
	// pauses.
	Pause time.Duration
	// LivePasses is how many passes the live copy makes before the freeze:
	// the second copies only what changed during the first.
	LivePasses int
	// MaxFreeze bounds the freeze until the switch: a final copy and
	// verification that take longer are abandoned, the storage unfrozen
	// and the copy resumed live. With Settle after it, it bounds how long
	// an update waits: keep their sum under the logic services'
	// --freeze-wait (2.5 s), so that none is refused.
	MaxFreeze time.Duration
	// Settle bounds the wait, after the switch, for every logic service
	// of the unit to read the copy (confirm.go); updates wait meanwhile.
	Settle time.Duration
	// Retire deletes the old data once the unit is cold, which makes the
	// move final; without it the move stops at cold (undoable).
	Retire bool
}

// DefaultConfig returns the settings of tradeunit admin unit cool.
func DefaultConfig() Config {
	return Config{RangeRows: 500, LivePasses: 2, MaxFreeze: time.Second, Settle: time.Second}
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	if c.RangeRows < 1 || c.LivePasses < 1 || c.MaxFreeze <= 0 || c.Settle <= 0 || c.Pause < 0 {
		return tradeunit.Errorf(tradeunit.CodeParamError,
			"lifecycle: range rows and live passes must be at least 1, max freeze and settle positive and pause not negative, got %+v", c)
	}
	return nil
}

// Deps are what a Mover works with.
type Deps struct {
	Routes   routing.Editor
	Topology routing.TopologyEditor
	// Passwords resolves the passwords of the DSNs' users (secrets).
	Passwords dsn.Passwords
	// Dialer reaches the unit's logic services, to confirm that each reads
	// the copy after the switch (with the caller's certificate: an
	// operator's or the controller's).
	Dialer tradeunit.LogicDialer
	// Who and Why are recorded with every change the move makes.
	Who, Why string
	Logger   *slog.Logger
	// Progress is told of the copy's progress; nil for none.
	Progress func(Progress)
	// AfterStep, if set, is called once each step is recorded: the fault
	// tests stop the mover there (see cmd/tradeunit's
	// TRADEUNIT_LIFECYCLE_HANG_AFTER) and kill it.
	AfterStep func(done routing.Temperature)
}

// Progress is where a move stands.
type Progress struct {
	Unit tradeunit.UnitID
	Step routing.Temperature
	sqlstore.SyncProgress
}

// Report is what a move did.
type Report struct {
	Unit     tradeunit.UnitID
	From, To dsn.DSN
	// Steps lists the steps this run made, in order, with how long each
	// took.
	Steps []StepReport
	// FreezeWindow is from the freeze to the switch: the longest any
	// update waited (zero if this run did not switch).
	FreezeWindow time.Duration
	// Copied sums the copy passes of this run.
	Copied sqlstore.SyncReport
	// Deleted is how many rows of the old storage were deleted.
	Deleted int64

	thawed int // freezes given up (see thaw)
}

// StepReport is one step of a move.
type StepReport struct {
	Step routing.Temperature
	Took time.Duration
	Note string
}

// Mover moves units to cold storage.
type Mover struct {
	cfg  Config
	deps Deps
}

// NewMover returns a Mover.
func NewMover(cfg Config, deps Deps) (*Mover, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Routes == nil || deps.Topology == nil || deps.Dialer == nil || deps.Logger == nil {
		return nil, errors.New("lifecycle: the routing table, the storage topology, a dialer and a logger are required")
	}
	if deps.Who == "" {
		deps.Who = "lifecycle"
	}
	return &Mover{cfg: cfg, deps: deps}, nil
}

// Cool moves unit id to the cold storage to (zero: where a move under way
// copies to), resuming where an earlier run stopped. It implements the
// Controller's Cooler.
func (m *Mover) Cool(ctx context.Context, id tradeunit.UnitID, to dsn.DSN) error {
	_, err := m.Move(ctx, id, to)
	return err
}

// state is a unit's entry in the table and in the topology.
func (m *Mover) state(id tradeunit.UnitID) (routing.Unit, routing.UnitStorage, error) {
	u, ok := m.deps.Routes.Current().Unit(id)
	if !ok {
		return routing.Unit{}, routing.UnitStorage{}, tradeunit.Errorf(tradeunit.CodeParamError, "unit %d is not in the routing table", id)
	}
	st, ok := m.deps.Topology.Current().Unit(id)
	if !ok {
		return routing.Unit{}, routing.UnitStorage{}, tradeunit.Errorf(tradeunit.CodeParamError, "unit %d has no storage in the storage topology", id)
	}
	return *u, *st, nil
}

// Move runs the move of unit id to to, step by step, until the unit is
// cold (retired, with Config.Retire), and reports what this run did.
func (m *Mover) Move(ctx context.Context, id tradeunit.UnitID, to dsn.DSN) (*Report, error) {
	r := &Report{Unit: id, To: to}
	for {
		u, st, err := m.state(id)
		if err != nil {
			return r, err
		}
		if r.From == (dsn.DSN{}) {
			r.From = st.Primary
			if st.Previous != nil {
				r.From = st.Previous.Primary
			}
		}
		if to == (dsn.DSN{}) {
			to = st.ColdCopy
			if st.Cold {
				to = st.Primary // resumed after the switch
			}
			r.To = to
		}
		start := time.Now()
		var note string
		step := u.Temperature
		switch {
		case step == routing.Hot:
			return r, tradeunit.Errorf(tradeunit.CodeInvalidRequest,
				"unit %d is hot (it takes new orders): warm it first (tradeunit admin unit set --unit %d --temperature warm)", id, id)
		case step == routing.Retired, step == routing.Cold && !m.cfg.Retire:
			return r, nil
		case st.Cold && step != routing.Cold:
			// Killed between the switch and the table's record of it.
			note, err = m.recordSwitch(ctx, id, st)
		case step == routing.Warm:
			note, err = m.start(ctx, id, st, to)
		case step == routing.Copying:
			note, err = m.copyLive(ctx, r, id, st)
		case step == routing.Freezing:
			note, err = m.freeze(ctx, r, id, st)
		case step == routing.Verifying:
			note, err = m.verifyAndSwitch(ctx, r, id, st)
		case step == routing.Cold:
			note, err = m.retire(ctx, r, id, st)
		default:
			return r, fmt.Errorf("lifecycle: unit %d: unknown step %q", id, step)
		}
		r.Steps = append(r.Steps, StepReport{Step: step, Took: time.Since(start), Note: note})
		if err != nil {
			return r, fmt.Errorf("unit %d, step %s: %w", id, step, err)
		}
		m.deps.Logger.Info("lifecycle: step done", "unit", id, "step", step, "took", time.Since(start), "note", note)
		if m.deps.AfterStep != nil {
			m.deps.AfterStep(step)
		}
	}
}

// setStep records unit id's step in the routing table.
func (m *Mover) setStep(ctx context.Context, id tradeunit.UnitID, step routing.Temperature) error {
	_, err := m.deps.Routes.Update(ctx, m.change(fmt.Sprintf("unit %d %s", id, step)), func(t *routing.Table) error {
		u, ok := t.Unit(id)
		if !ok {
			return tradeunit.Errorf(tradeunit.CodeParamError, "unit %d is not in the routing table", id)
		}
		u.Temperature, u.AcceptNew = step, false
		return nil
	})
	return err
}

// setStorage changes unit id's entry in the storage topology.
func (m *Mover) setStorage(ctx context.Context, id tradeunit.UnitID, what string, fn func(*routing.UnitStorage) error) error {
	_, err := m.deps.Topology.Update(ctx, m.change(fmt.Sprintf("unit %d %s", id, what)), func(t *routing.Topology) error {
		u, ok := t.Unit(id)
		if !ok {
			return tradeunit.Errorf(tradeunit.CodeParamError, "unit %d has no storage in the storage topology", id)
		}
		return fn(u)
	})
	return err
}

func (m *Mover) change(what string) routing.Change {
	return routing.Change{Who: m.deps.Who, Why: m.deps.Why, What: what}
}

// open opens the store of d for the move.
func (m *Mover) open(ctx context.Context, d dsn.DSN) (*sqlstore.Store, error) {
	return sqlstore.Open(ctx, d, m.deps.Passwords)
}

// openBoth opens the unit's primary and its cold copy.
func (m *Mover) openBoth(ctx context.Context, st routing.UnitStorage) (src, dst *sqlstore.Store, err error) {
	if !st.HasPrimary() {
		return nil, nil, tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "unit %d has no primary (a failover is under way)", st.Unit)
	}
	if src, err = m.open(ctx, st.Primary); err != nil {
		return nil, nil, err
	}
	if dst, err = m.open(ctx, st.ColdCopy); err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, dst, nil
}

func (m *Mover) progress(id tradeunit.UnitID, step routing.Temperature) func(sqlstore.SyncProgress) {
	if m.deps.Progress == nil {
		return nil
	}
	return func(p sqlstore.SyncProgress) { m.deps.Progress(Progress{Unit: id, Step: step, SyncProgress: p}) }
}

func addSync(sum *sqlstore.SyncReport, r sqlstore.SyncReport) {
	sum.RowsChecked += r.RowsChecked
	sum.RowsCopied += r.RowsCopied
	sum.BytesCopied += r.BytesCopied
	sum.RangesCompared += r.RangesCompared
	sum.RangesCopied += r.RangesCopied
	sum.RangesDiffering += r.RangesDiffering
}
