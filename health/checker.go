// Package health is the health checker: it observes every unit by running a
// synthetic real order through each unit's normal path at every interval
// (create, query, close, as the reserved probe merchant), keeps each unit's
// success rate, consecutive failures and latency (EWMA and p99), and decides
// which units to eject under a safe policy (see Policy): never more than a
// share of a partition, with a panic state when more look bad at once, and a
// growing back-off for units that flap.
//
// It serves its view over HTTP (GET /v1/units, with long-poll) to the
// proxies, which combine it with their own (package selection), and
// Prometheus metrics (GET /metrics).
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/routing"
)

// Config holds a Checker's settings. Start from DefaultConfig.
type Config struct {
	Interval time.Duration // between two probes of a unit
	// ProbeTimeout bounds each call of a probe (half the interval by
	// default; a longer one lets a slow unit be measured). A unit
	// that hangs fails its probe after it; after a failed probe the unit is
	// probed again a tenth of an interval later, so a hung unit is ejected
	// within 1.2 × Interval + FailuresToEject × ProbeTimeout (2.7 intervals
	// by default).
	ProbeTimeout time.Duration
	// ColdProbeTimeout bounds each call of a probe of a cold unit: cold
	// storage may be slower, and its reads have a latency budget of their
	// own.
	ColdProbeTimeout time.Duration
	// CreateAttempts is how many units a create tries (the proxy's
	// --create-attempts), for the partitions' computed availability.
	CreateAttempts int
	Policy         Policy
}

// DefaultConfig returns the settings of a checker probing every second.
func DefaultConfig() Config {
	return Config{Interval: time.Second, ProbeTimeout: 500 * time.Millisecond, ColdProbeTimeout: 2 * time.Second, CreateAttempts: 3, Policy: DefaultPolicy()}
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	if c.Interval <= 0 {
		return errors.New("health: Interval must be positive")
	}
	if c.ProbeTimeout <= 0 || c.ColdProbeTimeout <= 0 {
		return fmt.Errorf("health: ProbeTimeout and ColdProbeTimeout must be positive, got %v and %v", c.ProbeTimeout, c.ColdProbeTimeout)
	}
	if c.CreateAttempts < 1 {
		return fmt.Errorf("health: CreateAttempts must be at least 1, got %d", c.CreateAttempts)
	}
	if err := c.Policy.validate(); err != nil {
		return err
	}
	if c.Policy.MaxEjection < c.Policy.BaseEjection {
		return errors.New("health: MaxEjection must not be below BaseEjection")
	}
	return nil
}

// Deps are what a Checker works with.
type Deps struct {
	Routes routing.Source // the units to probe
	// Dialer connects to the units' logic services; the checker closes
	// it. Required unless Prober is set.
	Dialer tradeunit.LogicDialer
	// Prober runs the probes; an RPCProber over Dialer if nil.
	Prober   Prober
	Registry prometheus.Registerer // where metrics go
	Logger   *slog.Logger
	Now      func() time.Time // the clock; time.Now if nil
}

// Checker probes the units of a routing table and judges them.
type Checker struct {
	cfg     Config
	deps    Deps
	policy  Policy
	now     func() time.Time
	dialer  tradeunit.LogicDialer // nil with a Prober of the caller
	metrics *metrics
	log     *slog.Logger

	mu      sync.Mutex
	table   *routing.Table
	units   map[tradeunit.UnitID]*unitEntry
	parts   map[string]partitionVerdict
	version uint64
	dirty   bool          // stats changed since the last version
	changed chan struct{} // closed and replaced at each new version
	cached  *cachedReport
}

// unitEntry is one probed unit.
type unitEntry struct {
	target      Target
	partition   string
	temperature routing.Temperature
	stats       unitStats
	replicas    []ReplicaResult
	stop        context.CancelFunc
	update      chan Target // new addresses or probe kind for the loop
}

// New returns a Checker; Run starts it.
func New(cfg Config, deps Deps) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Routes == nil || deps.Registry == nil || deps.Logger == nil {
		return nil, errors.New("health: Routes, Registry and Logger are required")
	}
	c := &Checker{
		cfg: cfg, deps: deps, policy: cfg.Policy, log: deps.Logger, now: deps.Now,
		metrics: newMetrics(deps.Registry),
		units:   map[tradeunit.UnitID]*unitEntry{},
		parts:   map[string]partitionVerdict{},
		changed: make(chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if deps.Prober == nil {
		if deps.Dialer == nil {
			return nil, errors.New("health: no Dialer to reach the units")
		}
		c.dialer = deps.Dialer
		c.deps.Prober = &RPCProber{Dialer: c.dialer}
	}
	return c, nil
}

// Run probes until ctx ends: it follows the routing table, keeps one probe
// loop per available unit, and publishes the statistics at most once per
// interval (verdict changes at once).
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		c.mu.Lock()
		for _, e := range c.units {
			e.stop()
		}
		c.mu.Unlock()
		wg.Wait()
		if c.dialer != nil {
			c.dialer.Close()
		}
	}()
	tables := c.deps.Routes.Watch(ctx)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case t, ok := <-tables:
			if !ok {
				return
			}
			c.follow(ctx, t, &wg)
		case <-tick.C:
			c.mu.Lock()
			if c.dirty {
				c.publishLocked()
			}
			c.mu.Unlock()
		}
	}
}

// follow starts, updates and stops probe loops to match t.
func (c *Checker) follow(ctx context.Context, t *routing.Table, wg *sync.WaitGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.table = t
	keep := map[tradeunit.UnitID]bool{}
	addrs := map[string]bool{}
	for i := range t.Units {
		u := &t.Units[i]
		if !u.Available || len(u.LogicAddrs) == 0 {
			continue
		}
		keep[u.ID] = true
		for _, a := range u.LogicAddrs {
			addrs[a] = true
		}
		target := Target{Unit: u.ID, Addrs: slices.Clone(u.LogicAddrs), Order: u.TakesNewOrders(), Timeout: c.cfg.ProbeTimeout}
		if u.Temperature.IsCold() {
			target.Timeout = c.cfg.ColdProbeTimeout
		}
		if e, ok := c.units[u.ID]; ok {
			e.partition, e.temperature = u.Partition, u.Temperature
			c.metrics.temperature(u.ID, u.Temperature)
			if !slices.Equal(e.target.Addrs, target.Addrs) || e.target.Order != target.Order || e.target.Timeout != target.Timeout {
				e.target = target
				select {
				case <-e.update: // replace a target the loop has not taken yet
				default:
				}
				e.update <- target
			}
			continue
		}
		lctx, stop := context.WithCancel(ctx)
		e := &unitEntry{target: target, partition: u.Partition, temperature: u.Temperature, stop: stop, update: make(chan Target, 1)}
		c.metrics.temperature(u.ID, u.Temperature)
		c.units[u.ID] = e
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(lctx, u.ID, target, e.update)
		}()
	}
	for id, e := range c.units {
		if !keep[id] {
			e.stop()
			delete(c.units, id)
			c.metrics.forget(id)
		}
	}
	if c.dialer != nil {
		c.dialer.Retain(addrs)
	}
	c.judgeLocked()
	c.publishLocked()
}

// loop probes one unit until ctx ends.
func (c *Checker) loop(ctx context.Context, id tradeunit.UnitID, target Target, update <-chan Target) {
	for {
		start := c.now()
		results := c.deps.Prober.Probe(ctx, target)
		if ctx.Err() != nil {
			return
		}
		again := c.record(id, results)
		// A unit with an unconfirmed failure is probed again soon, so that a
		// failure is confirmed (or not) within a fraction of an interval.
		wait := c.cfg.Interval - c.now().Sub(start)
		if again {
			wait = c.cfg.Interval / 10
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case target = <-update:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// record folds one probe's results into the unit's statistics and judges
// its partition. The unit passed if any replica passed (a proxy moves on to
// the next replica of a unit when one fails); its latency is the mean of the
// passing replicas'. It reports whether the unit should be probed again at
// once: it failed but is not ejected yet.
func (c *Checker) record(id tradeunit.UnitID, results []ReplicaResult) (again bool) {
	var (
		ok      bool
		latency time.Duration
		passed  int
		errText string
	)
	for _, r := range results {
		if r.Err == nil {
			ok = true
			latency += r.Latency
			passed++
		} else if errText == "" {
			errText = r.Addr + ": " + r.Err.Error()
		}
	}
	if passed > 0 {
		latency /= time.Duration(passed)
	}
	if len(results) == 0 {
		errText = "no logic-service address"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, exists := c.units[id]
	if !exists {
		return false
	}
	e.replicas = results
	e.stats.observe(&c.policy, ok, latency, errText, c.now())
	c.metrics.probe(id, ok, latency)
	c.dirty = true
	c.judgeLocked(e.partition)
	c.metrics.unit(id, &e.stats)
	return !ok && !e.stats.ejected && e.stats.consecutiveFailures < c.policy.FailuresToEject
}

// judgeLocked judges the named partitions (every partition if none) and
// publishes at once if a verdict or a panic state changed.
func (c *Checker) judgeLocked(only ...string) {
	byPart := map[string]map[tradeunit.UnitID]*unitStats{}
	for id, e := range c.units {
		if len(only) > 0 && !slices.Contains(only, e.partition) {
			continue
		}
		if byPart[e.partition] == nil {
			byPart[e.partition] = map[tradeunit.UnitID]*unitStats{}
		}
		byPart[e.partition][id] = &e.stats
	}
	now := c.now()
	material := false
	for name, units := range byPart {
		v := judge(&c.policy, units, now)
		prev, seen := c.parts[name]
		for _, id := range v.changed {
			material = true
			s := units[id]
			c.metrics.unit(id, s)
			if s.ejected {
				c.metrics.ejections.WithLabelValues(id.String(), name).Inc()
				c.log.Warn("unit ejected", "unit", id, "partition", name, "consecutive_failures", s.consecutiveFailures,
					"back_off", s.ejectedUntil.Sub(now), "ejections", s.ejections, "last_error", s.lastError)
			} else {
				c.log.Info("unit returned", "unit", id, "partition", name)
			}
		}
		if !seen || prev.panic != v.panic {
			material = material || seen || v.panic
			if v.panic {
				c.log.Error("partition in panic: more units look bad than may be ejected; trusting none of the verdicts beyond the bound",
					"partition", name, "bad", v.bad, "units", v.units, "max_ejected", v.maxEjected)
			} else if seen {
				c.log.Info("partition out of panic", "partition", name)
			}
		}
		c.parts[name] = v
		c.metrics.partition(name, v)
		c.metrics.availability(name, c.availabilityLocked(units))
	}
	if len(only) == 0 {
		for name := range c.parts {
			if byPart[name] == nil {
				delete(c.parts, name)
				material = true
			}
		}
	}
	if material {
		c.publishLocked()
	}
}

// publishLocked makes a new version and wakes the long-polls.
func (c *Checker) publishLocked() {
	c.version++
	c.dirty = false
	c.cached = nil
	close(c.changed)
	c.changed = make(chan struct{})
}
