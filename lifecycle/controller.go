// Package lifecycle moves transaction units along their lifecycle (seed
// 000 §5.4, routing.Lifecycle): hot, warm, then moved to cold storage, with
// fresh units added so that new orders always have a home. The Controller
// applies the policy; the Mover moves one unit.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/admin"
	"tradeunit/dsn"
	"tradeunit/election"
	"tradeunit/routing"
	"tradeunit/store/sqlstore"
)

// Cooler moves a warm unit's data to cold storage (package lifecycle's Mover implements it).
type Cooler interface {
	Cool(ctx context.Context, unit tradeunit.UnitID, to dsn.DSN) error
}

// Who is the name the controller's changes are recorded under.
const Who = "lifecycle"

// ControllerDeps is what a Controller works on.
type ControllerDeps struct {
	Routes   routing.Editor
	Topology routing.TopologyEditor
	Cooler   Cooler
	// Election decides whether this controller acts (election.ForTable).
	Election election.Election
	// Passwords resolves the passwords of the storage users (nil: none).
	Passwords dsn.Passwords
	Registry  prometheus.Registerer // nil: metrics are not registered
	Logger    *slog.Logger          // nil: slog.Default()
}

// Status is what a Controller is doing.
type Status struct {
	Active    bool      // it holds the election
	Rounds    int64     // rounds run since it started
	LastRound time.Time // when the last round ended
}

// Controller applies the lifecycle policy automatically, each round
// (every ControllerConfig.Every) and for every unit of the routing table:
//
//   - a hot unit past its order-count, size or age threshold is warmed (it
//     stops taking new orders, and keeps serving its orders' updates and
//     reads); but first a fresh unit replacing it is added, labelled
//     lifecycle.replaces=N, and the hot unit is warmed only once the fresh
//     one takes new orders (a later round), so no round leaves a partition
//     without a unit that takes new orders and each keeps its hot capacity;
//   - a partition with fewer hot units accepting new orders than
//     ControllerConfig.MinHot gets fresh units;
//   - a warm unit whose change rate stayed below ControllerConfig.CoolBelow
//     for ControllerConfig.CoolAfter is moved to cold storage by the Cooler
//     (the Mover), and a unit already moving, or cold and not yet retired,
//     is handed to the Cooler again: the move resumes.
//
// A fresh unit is registered as `tradeunit admin unit add` without --logic
// does (admin.AddUnit): storage first, then the table, with no logic
// address and unavailable, for the deployment (tradeunit dev's cluster) to
// start its logic services and make it available.
//
// Switches: ControllerConfig.Off (flag --off) stops every action; the unit
// label lifecycle=off (tradeunit admin unit set N --label lifecycle=off)
// takes one unit out at run time. The table has no table-wide label, so
// there is no run-time switch for all units: label them, or restart with
// --off.
//
// One controller acts at a time (an Election): with an etcd table, an etcd
// lease election under the table's prefix; with a table file, an exclusive
// lock on FILE.lifecycle.lock. Others wait on standby and take over when
// the active one dies.
type Controller struct {
	cfg     ControllerConfig
	deps    ControllerDeps
	log     *slog.Logger
	metrics *metrics

	active atomic.Bool
	atCap  atomic.Bool // MaxUnits reached, and said so
	rounds atomic.Int64
	last   atomic.Pointer[time.Time]

	mu sync.Mutex
	// quietSince is when each warm unit was first seen below CoolBelow
	// in a row of rounds; it lives in memory only, so a controller that
	// takes over starts CoolAfter again (moving later, never sooner).
	quietSince map[tradeunit.UnitID]time.Time
	moving     map[tradeunit.UnitID]bool // Cool calls under way
	moves      sync.WaitGroup
	moveCtx    context.Context // cancelled when this controller stops acting
}

// NewController returns a controller; Run runs it.
func NewController(cfg ControllerConfig, deps ControllerDeps) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Routes == nil || deps.Topology == nil || deps.Cooler == nil || deps.Election == nil {
		return nil, errors.New("lifecycle: routes, topology, cooler and election are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{cfg: cfg, deps: deps, log: log.With("component", "lifecycle"), metrics: newMetrics(deps.Registry),
		quietSince: map[tradeunit.UnitID]time.Time{}, moving: map[tradeunit.UnitID]bool{}, moveCtx: context.Background()}
	return c, nil
}

// Status returns what the controller is doing now.
func (c *Controller) Status() Status {
	s := Status{Active: c.active.Load(), Rounds: c.rounds.Load()}
	if t := c.last.Load(); t != nil {
		s.LastRound = *t
	}
	return s
}

// Run waits to be elected, then runs a round every ControllerConfig.Every until ctx
// ends or the election is lost (then it waits again). On return its moves
// are stopped (the mover resumes them later) and the election given up.
func (c *Controller) Run(ctx context.Context) error {
	election.Serve(ctx, c.deps.Election, c.cfg.LockRetry, c.log, "lifecycle controller", c.term)
	return nil
}

// term is one spell as the active controller: rounds until ctx ends or
// lost closes.
func (c *Controller) term(ctx context.Context, lost <-chan struct{}) {
	tctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.moveCtx = tctx
	clear(c.quietSince)
	c.mu.Unlock()
	c.active.Store(true)
	c.metrics.active.Set(1)
	c.log.Info("lifecycle controller active", "every", c.cfg.Every, "off", c.cfg.Off)
	defer func() {
		c.active.Store(false)
		c.metrics.active.Set(0)
		cancel()
		c.moves.Wait()
	}()
	tick := time.NewTicker(c.cfg.Every)
	defer tick.Stop()
	for {
		if err := c.Round(tctx); err != nil && tctx.Err() == nil {
			c.log.Warn("lifecycle round failed", "err", err)
		}
		select {
		case <-tctx.Done():
			return
		case <-lost:
			c.log.Warn("lifecycle controller lost the election: standing by")
			return
		case <-tick.C:
		}
	}
}

// Round applies the policy once. Run calls it while this controller is the
// active one; a caller that calls it directly (a test) must be sure no
// other controller acts meanwhile. Moves it starts run on in the
// background, until Run's term ends.
func (c *Controller) Round(ctx context.Context) error {
	defer func() {
		now := c.cfg.Now()
		c.last.Store(&now)
		c.rounds.Add(1)
		c.metrics.lastRound.Set(float64(now.UnixNano()) / 1e9)
	}()
	t := c.deps.Routes.Current()
	c.metrics.countUnits(t)
	if c.cfg.Off {
		return nil
	}
	now := c.cfg.Now()
	var errs []error
	var hot []*routing.Unit
	reasons := map[tradeunit.UnitID]string{}
	for i := range t.Units {
		u := &t.Units[i]
		if off(u) {
			continue
		}
		switch {
		case isHot(u):
			a, err := c.activity(ctx, u.ID, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if r := c.cfg.warmReason(a, now); r != "" {
				hot, reasons[u.ID] = append(hot, u), r
			}
		case u.Temperature == routing.Warm:
			if err := c.watchWarm(ctx, u.ID, now); err != nil {
				errs = append(errs, err)
			}
		case u.Temperature.Moving() || u.Temperature == routing.Cold:
			c.cool(u.ID, "resume the move ("+string(u.Temperature)+")")
		}
	}
	errs = append(errs, c.keepMinHot(ctx))
	for _, u := range hot {
		errs = append(errs, c.warmOrReplace(ctx, u.ID, reasons[u.ID]))
	}
	return errors.Join(errs...)
}

// activity reads unit id's figures from its primary, read-only, with the
// events since now-CoolWindow.
func (c *Controller) activity(ctx context.Context, id tradeunit.UnitID, now time.Time) (sqlstore.Activity, error) {
	st, ok := c.deps.Topology.Current().Unit(id)
	if !ok || !st.HasPrimary() {
		c.metrics.errors.WithLabelValues("measure").Inc()
		return sqlstore.Activity{}, fmt.Errorf("unit %d: no storage primary in the storage topology", id)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := sqlstore.OpenReadOnly(ctx, st.Primary, c.deps.Passwords)
	if err == nil {
		defer s.Close()
		var a sqlstore.Activity
		if a, err = s.Activity(ctx, now.Add(-c.cfg.CoolWindow)); err == nil {
			return a, nil
		}
	}
	c.metrics.errors.WithLabelValues("measure").Inc()
	return sqlstore.Activity{}, fmt.Errorf("unit %d: measure %s: %w", id, st.Primary, err)
}

// watchWarm measures warm unit id's change rate and cools it once the rate
// stayed below CoolBelow for CoolAfter.
func (c *Controller) watchWarm(ctx context.Context, id tradeunit.UnitID, now time.Time) error {
	a, err := c.activity(ctx, id, now)
	if err != nil {
		return err
	}
	rate := float64(a.EventsSince) / c.cfg.CoolWindow.Seconds()
	c.mu.Lock()
	since, quiet := c.quietSince[id]
	switch {
	case rate >= c.cfg.CoolBelow:
		delete(c.quietSince, id)
		quiet = false
	case !quiet:
		c.quietSince[id], since, quiet = now, now, true
	}
	c.mu.Unlock()
	if !quiet || now.Sub(since) < c.cfg.CoolAfter {
		c.log.Debug("warm unit not cool yet", "unit", id, "changes_per_sec", rate, "cool_below", c.cfg.CoolBelow)
		return nil
	}
	c.cool(id, fmt.Sprintf("%.4g changes/s over %s, below %.4g for %s (threshold %s)",
		rate, c.cfg.CoolWindow, c.cfg.CoolBelow, now.Sub(since).Truncate(time.Second), c.cfg.CoolAfter))
	return nil
}

// cool starts the move of unit id to its cold storage in the background,
// unless one is under way or MaxMoves are.
func (c *Controller) cool(id tradeunit.UnitID, why string) {
	to, err := c.cfg.ColdStorage.DSN(id)
	if err != nil { // Validate checked the template
		c.log.Error("lifecycle: cold storage", "unit", id, "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moving[id] {
		return
	}
	if len(c.moving) >= c.cfg.MaxMoves {
		c.log.Debug("lifecycle: move waits for another to finish", "unit", id, "reason", why, "max_moves", c.cfg.MaxMoves)
		return
	}
	c.moving[id] = true
	ctx := c.moveCtx
	c.moves.Add(1)
	c.metrics.actions.WithLabelValues("cool").Inc()
	c.log.Info("lifecycle: moving unit to cold storage", "unit", id, "to", to, "reason", why)
	go func() {
		defer c.moves.Done()
		err := c.deps.Cooler.Cool(ctx, id, to)
		c.mu.Lock()
		delete(c.moving, id)
		if err == nil {
			delete(c.quietSince, id)
		}
		c.mu.Unlock()
		switch {
		case err == nil:
			c.metrics.actions.WithLabelValues("cooled").Inc()
			c.log.Info("lifecycle: unit moved to cold storage", "unit", id, "to", to)
		case ctx.Err() != nil:
			c.log.Info("lifecycle: move stopped; it resumes at the next term", "unit", id, "err", err)
		default:
			c.metrics.errors.WithLabelValues("cool").Inc()
			c.log.Warn("lifecycle: move failed; it resumes next round", "unit", id, "err", err)
		}
	}()
}

// keepMinHot adds fresh units to every partition with fewer than MinHot
// hot units accepting new orders.
func (c *Controller) keepMinHot(ctx context.Context) error {
	var errs []error
	for p, n := range partitions(c.deps.Routes.Current()) {
		for ; n < c.cfg.MinHot; n++ {
			why := fmt.Sprintf("partition %s has %d hot units accepting new orders, min hot %d", p, n, c.cfg.MinHot)
			if err := c.addFresh(ctx, p, 0, why); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// addFresh adds a fresh unit to partition, replacing unit replaces (0:
// none), as admin.AddUnit does without logic addresses.
func (c *Controller) addFresh(ctx context.Context, partition string, replaces tradeunit.UnitID, why string) error {
	t, top := c.deps.Routes.Current(), c.deps.Topology.Current()
	if c.cfg.MaxUnits > 0 && len(t.Units) >= c.cfg.MaxUnits {
		if !c.atCap.Swap(true) {
			c.log.Warn("lifecycle: no fresh unit added: the table has the most units allowed", "units", len(t.Units),
				"max_units", c.cfg.MaxUnits, "partition", partition, "reason", why)
		}
		return nil
	}
	c.atCap.Store(false)
	id := nextUnit(t, top)
	d, err := c.cfg.FreshStorage.DSN(id)
	if err != nil {
		return err
	}
	n := admin.NewUnit{ID: id, Partition: partition, Storage: routing.Storage{Primary: d}}
	if replaces != 0 {
		n.Labels = map[string]string{ReplacesLabel: fmt.Sprint(replaces)}
		if old, ok := t.Unit(replaces); ok {
			n.Weight = old.Weight // the same share of the partition's new orders
		}
	}
	a := &admin.Admin{Routes: c.deps.Routes, Topology: c.deps.Topology, Passwords: c.deps.Passwords,
		Who: Who, Why: why, Now: c.cfg.Now, CheckStorage: c.prepare}
	if _, err := a.AddUnit(ctx, n); err != nil {
		c.metrics.errors.WithLabelValues("add").Inc()
		return fmt.Errorf("add a fresh unit %d to partition %s: %w", id, partition, err)
	}
	c.metrics.actions.WithLabelValues("add").Inc()
	c.log.Info("lifecycle: fresh unit added", "unit", id, "partition", partition, "storage", d, "reason", why)
	return nil
}

// prepare creates a fresh unit's storage: a SQLite file's directory
// first, which sqlstore.Open does not create, then the schema.
func (c *Controller) prepare(ctx context.Context, d dsn.DSN) error {
	if d.Scheme == dsn.SQLite {
		if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, d, c.deps.Passwords)
	if err != nil {
		return err
	}
	return s.Close()
}

// errSkip aborts a table update whose premise no longer holds.
var errSkip = errors.New("skip")

// warmOrReplace warms hot unit id for reason, once its replacement takes
// new orders; without one it adds it and waits.
func (c *Controller) warmOrReplace(ctx context.Context, id tradeunit.UnitID, reason string) error {
	t := c.deps.Routes.Current()
	u, ok := t.Unit(id)
	if !ok {
		return nil
	}
	if capacity(u) {
		r, ok := replacement(t, id)
		if !ok {
			return c.addFresh(ctx, u.Partition, id, fmt.Sprintf("replaces unit %d, to be warmed: %s", id, reason))
		}
		if !r.TakesNewOrders() {
			c.log.Info("lifecycle: unit waits for its fresh replacement to take new orders", "unit", id,
				"replacement", r.ID, "reason", reason)
			return nil
		}
	}
	var why string
	_, err := c.deps.Routes.Update(ctx, routing.Change{Who: Who, What: fmt.Sprintf("unit warm %d", id), Why: reason},
		func(t *routing.Table) error {
			u, ok := t.Unit(id)
			if !ok || !isHot(u) || off(u) {
				why = "it is no longer a hot unit under the controller"
				return errSkip
			}
			wasCapacity := capacity(u)
			u.Temperature, u.AcceptNew = routing.Warm, false
			// The invariant, checked on the table written: the
			// partition keeps a unit that takes new orders.
			if wasCapacity && !takesNew(t, u.Partition, id) {
				why = "its partition would have no unit taking new orders"
				return errSkip
			}
			return nil
		})
	switch {
	case errors.Is(err, errSkip):
		c.log.Info("lifecycle: unit not warmed", "unit", id, "because", why)
		return nil
	case err != nil:
		c.metrics.errors.WithLabelValues("warm").Inc()
		return fmt.Errorf("warm unit %d: %w", id, err)
	}
	c.metrics.actions.WithLabelValues("warm").Inc()
	c.log.Info("lifecycle: unit warmed", "unit", id, "reason", reason)
	return nil
}
