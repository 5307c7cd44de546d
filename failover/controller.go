// Package failover fails a unit's replicated storage over automatically
// when its primary dies, in the manner of Vitess's VTOrc: it watches every
// unit of the storage topology that has replicas, declares a primary dead
// only when independent observers agree, and then runs the operator's own
// failover (admin.FailoverStorage), which fences, promotes the replica
// holding every acknowledged transaction, or refuses.
package failover

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/election"
	"tradeunit/health"
	"tradeunit/replication"
	"tradeunit/routing"
)

// OffLabel is the unit label that takes a unit out of the controller's
// hands: failover=off (tradeunit admin unit set N --label failover=off).
const OffLabel = "failover"

// Who is the name the controller's changes are recorded under.
const Who = "failover-controller"

// Deps is what a Controller works on.
type Deps struct {
	// Routes is the routing table: the units' labels (OffLabel).
	Routes interface{ Current() *routing.Table }
	// Topology is the storage topology: the units' servers.
	Topology interface{ Current() *routing.Topology }
	Observer Observer
	Checker  Checker // nil: no second observer (Config.HealthURL unset)
	Failover Failoverer
	Election election.Election
	Registry prometheus.Registerer // nil: metrics are not registered
	Logger   *slog.Logger          // nil: slog.Default()
}

// Status is what a Controller has done.
type Status struct {
	Active    bool
	Rounds    int64
	Failovers int64
	Refused   int64
	// LastRTO is the last failover's time from the first failed check to
	// the new primary in the topology.
	LastRTO time.Duration
	// Rejoins and RejoinsRefused count fenced servers rejoined, and
	// refused for errant transactions (Config.Rejoin).
	Rejoins, RejoinsRefused int64
	// Repoints counts replicas re-pointed to their primary after a
	// failover that stopped before doing so.
	Repoints int64
}

// unitState is what the controller remembers of one unit across rounds. It
// lives in memory only: a controller that takes over counts FailAfter
// again (failing over later, never sooner).
type unitState struct {
	failures     int
	since        time.Time // when the first failed check of this run began
	lastFailover time.Time
	stopped      bool // this controller's last failover stopped before the remap
}

// Controller watches the units' primaries and fails dead ones over; see
// Decide for when. One controller acts at a time (Deps.Election).
type Controller struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics

	active    atomic.Bool
	rounds    atomic.Int64
	failovers atomic.Int64
	refused   atomic.Int64
	lastRTO   atomic.Int64
	rejoins   atomic.Int64
	// rejoinsRefused counts errant refusals.
	rejoinsRefused atomic.Int64
	repoints       atomic.Int64

	mu     sync.Mutex
	units  map[tradeunit.UnitID]*unitState
	recent []time.Time // failovers started in the last hour, all units
	// rejoinAfter holds back a fenced server whose rejoin was refused.
	rejoinAfter map[string]time.Time
}

// New returns a controller; Run runs it.
func New(cfg Config, deps Deps) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Routes == nil || deps.Topology == nil || deps.Observer == nil || deps.Failover == nil || deps.Election == nil {
		return nil, errors.New("failover: routes, topology, observer, failover and election are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Controller{cfg: cfg, deps: deps, log: log.With("component", "failover"), metrics: newMetrics(deps.Registry),
		units: map[tradeunit.UnitID]*unitState{}, rejoinAfter: map[string]time.Time{}}, nil
}

// Status returns what the controller has done.
func (c *Controller) Status() Status {
	return Status{Active: c.active.Load(), Rounds: c.rounds.Load(), Failovers: c.failovers.Load(), Refused: c.refused.Load(),
		LastRTO: time.Duration(c.lastRTO.Load()), Rejoins: c.rejoins.Load(), RejoinsRefused: c.rejoinsRefused.Load(),
		Repoints: c.repoints.Load()}
}

// Run waits to be elected, then runs a round every Config.Every until ctx
// ends or the election is lost (then it waits again).
func (c *Controller) Run(ctx context.Context) error {
	election.Serve(ctx, c.deps.Election, c.cfg.LockRetry, c.log, "failover controller", c.term)
	return nil
}

// term is one spell as the active controller.
func (c *Controller) term(ctx context.Context, lost <-chan struct{}) {
	c.mu.Lock()
	clear(c.units)
	c.mu.Unlock()
	c.active.Store(true)
	c.metrics.active.Set(1)
	c.log.Info("failover controller active", "every", c.cfg.Every, "fail_after", c.cfg.FailAfter, "checker", c.cfg.HealthURL, "off", c.cfg.Off)
	defer func() {
		c.active.Store(false)
		c.metrics.active.Set(0)
	}()
	tick := time.NewTicker(c.cfg.Every)
	defer tick.Stop()
	for {
		c.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-lost:
			c.log.Warn("failover controller lost the election: standing by")
			return
		case <-tick.C:
		}
	}
}

// Round checks every unit with replicas once and fails over those whose
// primary is dead. Run calls it while this controller is the active one; a
// caller that calls it directly (a test) must be sure no other acts.
func (c *Controller) Round(ctx context.Context) {
	defer c.rounds.Add(1)
	top := c.deps.Topology.Current()
	table := c.deps.Routes.Current()
	var report *health.Report
	if c.deps.Checker != nil {
		r, err := c.deps.Checker.Report(ctx)
		if err != nil {
			c.log.Warn("health checker unreadable: no unit fails over this round", "url", c.cfg.HealthURL, "err", err)
		}
		report = r
	}
	var units []routing.UnitStorage
	for _, u := range top.Units {
		// Only MariaDB replicates; a cold unit's storage is not replicated.
		if len(u.Replicas) > 0 && !u.Cold && u.Replicas[0].Scheme == dsn.MySQL {
			units = append(units, u)
		}
	}
	// Check every unit at once, so that one black-holed server costs the
	// round one CheckTimeout, not one per unit.
	evidence := make([]Evidence, len(units))
	starts := make([]time.Time, len(units))
	var wg sync.WaitGroup
	for i := range units {
		wg.Go(func() { starts[i] = c.cfg.Now(); evidence[i] = c.observe(ctx, units[i]) })
	}
	wg.Wait()
	for i, u := range units {
		e := evidence[i]
		if c.deps.Checker != nil {
			e.Checker, e.CheckerWhy = verdictOf(report, u.Unit)
		}
		c.judge(ctx, u, e, starts[i], table)
		if e.PrimaryErr == nil {
			off := c.cfg.Off || unitOff(table, u.Unit)
			c.rejoin(ctx, u, off)
			c.repoint(ctx, u, e, off)
		}
	}
}

// observe runs the controller's own checks of one unit.
func (c *Controller) observe(ctx context.Context, u routing.UnitStorage) Evidence {
	e := Evidence{NoPrimary: !u.HasPrimary()}
	if !e.NoPrimary {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CheckTimeout)
		e.PrimaryFenced, e.PrimaryErr = c.deps.Observer.Primary(cctx, u.Primary)
		cancel()
	}
	e.Replicas = make([]ReplicaSeen, len(u.Replicas))
	var wg sync.WaitGroup
	for i, d := range u.Replicas {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.cfg.CheckTimeout)
			defer cancel()
			r, err := c.deps.Observer.Replica(cctx, d)
			e.Replicas[i] = seen(d.Server(), r, err)
		})
	}
	wg.Wait()
	return e
}

// seen turns a replica's receiver status into evidence. A receiver
// connected to any source counts: one connected elsewhere than the
// topology's primary is a state to look at, not to fail over in.
func seen(server string, r *replication.ReplicaStatus, err error) ReplicaSeen {
	s := ReplicaSeen{Server: server, Err: err}
	if r != nil {
		s.IO, s.Receiving = r.IORunning, r.Receiving()
		s.Source = r.SourceHost + ":" + strconv.Itoa(r.SourcePort)
	}
	return s
}
