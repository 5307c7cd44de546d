// Package replicated gives a unit's logic service its storage as the storage
// topology describes it: one primary and its replicas. It implements
// tradeunit.Storage:
//
//   - It follows the topology (each Topology the caller sends). When the unit's primary changes (a failover),
//     it stops using the old one at once, closes its pool after a grace
//     period for the calls in flight, and opens the new one; in between,
//     changes fail with UNIT_UNAVAILABLE, a definite answer, so the proxy
//     creates elsewhere.
//   - It checks the primary every CheckEvery, as the application user
//     (replication.InspectPrimary): a primary that is read-only (fenced),
//     has no replica acknowledging (semi-sync), has a commit waiting for an
//     acknowledgement longer than MaxAckWait, or cannot be reached takes no
//     changes, and OnHealth tells the caller (the gRPC health service
//     reports NOT_SERVING), so creates go to other units.
//   - It runs the heartbeat writer on a writable primary
//     (replication.StartHeartbeat) and measures every replica's lag from it
//     (replication.HeartbeatAge), for eventual reads: a replica is used
//     while its lag, plus the time since it was measured, is under MaxLag.
//   - When the primary cannot be read, real-time reads are served by the
//     freshest replica, marked degraded. A read of the primary counts only
//     if the primary was still writable after it (see confirmed): a fenced
//     one may have been replaced already.
//
// A SQLite primary (development) has no replicas and is always writable.
package replicated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/replication"
)

// Config holds a Storage's settings. Start from DefaultConfig.
type Config struct {
	// MaxLag bounds the staleness of eventual reads: a replica further
	// behind is not used.
	MaxLag time.Duration
	// CheckEvery is how often the primary is inspected.
	CheckEvery time.Duration
	// LagEvery is how often each replica's lag is measured; with MaxLag it
	// decides how quickly a lagging replica is dropped.
	LagEvery time.Duration
	// MaxAckWait is how long a commit may wait for a semi-sync
	// acknowledgement before the primary is taken as unable to get one.
	MaxAckWait time.Duration
	// Heartbeat is the interval of the heartbeat writer on the primary.
	// Every logic-service replica of the unit runs one; they write the same
	// row.
	Heartbeat time.Duration
	// Grace is how long the pool of a replaced primary stays open for the
	// calls in flight on it.
	Grace time.Duration
}

// DefaultConfig returns the settings of tradeunit unit --routes.
func DefaultConfig() Config {
	return Config{MaxLag: time.Second, CheckEvery: 500 * time.Millisecond, LagEvery: 200 * time.Millisecond,
		MaxAckWait: time.Second, Heartbeat: 100 * time.Millisecond, Grace: 5 * time.Second}
}

// Validate reports a setting that is not positive; it changes nothing.
func (c Config) Validate() error {
	if c.MaxLag <= 0 || c.CheckEvery <= 0 || c.LagEvery <= 0 || c.MaxAckWait <= 0 || c.Heartbeat <= 0 || c.Grace <= 0 {
		return fmt.Errorf("replicated storage: every duration must be positive, got %+v", c)
	}
	return nil
}

// Topology is a unit's storage as its topology names it now.
type Topology struct {
	Revision int64   // of the topology, for logs
	Primary  dsn.DSN // the zero DSN while a failover is under way
	Replicas []dsn.DSN
}

// Deps are what a Storage works with.
type Deps struct {
	Unit tradeunit.UnitID
	// Topology delivers the unit's storage, at once and at every change,
	// until it is closed (see routing.WatchUnitStorage).
	Topology <-chan Topology
	// Passwords resolves the passwords of the application user (secrets).
	Passwords dsn.Passwords
	// OnHealth is called when whether the unit can take changes changes,
	// with the reason when it cannot. It must not block; nil for none.
	OnHealth func(serving bool, why string)
	Logger   *slog.Logger
}

// Storage is a unit's replicated storage, following the routing table.
type Storage struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed chan struct{}

	mu       sync.RWMutex
	primary  *primary // nil: none in the table
	replicas map[dsn.DSN]*replica
	serving  bool // last reported to OnHealth
	reported bool
	lastWhy  string
}

var _ tradeunit.Storage = (*Storage)(nil)

// primary is the unit's primary of the moment.
type primary struct {
	dsn   dsn.DSN
	mysql string // go-sql-driver DSN, with the password; "" for SQLite
	// ctx ends when the primary is dropped: it bounds its opening and its
	// heartbeat writer.
	ctx    context.Context
	cancel context.CancelFunc

	// Under Storage.mu:
	store     tradeunit.Store // nil until opened
	reader    tradeunit.Store // store, for reads: confirmed on MariaDB
	openErr   error           // why it is not open yet
	checked   bool            // inspected at least once since open
	writable  bool
	why       string // why it is not writable
	reachable bool
	heartbeat *replication.Heartbeat
	// heartbeatStarting is set while startHeartbeat runs.
	heartbeatStarting bool
}

// replica is one replica of the unit, with its last measured lag.
type replica struct {
	dsn   dsn.DSN
	mysql string // go-sql-driver DSN, with the password
	store tradeunit.Store

	// Under Storage.mu:
	lag        time.Duration // heartbeat age when measured
	measuredAt time.Time     // when the measurement started
	known      bool          // lag was measured (and a heartbeat found)
	reachable  bool
}

// Open starts following deps.Topology. It returns at once: the primary
// opens in the background (until then, and whenever the unit has none,
// changes fail with UNIT_UNAVAILABLE). Close releases it.
func Open(cfg Config, deps Deps) (*Storage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.Unit.Validate(); err != nil {
		return nil, err
	}
	if deps.Topology == nil || deps.Logger == nil {
		return nil, errors.New("replicated storage: Topology and Logger are required")
	}
	if deps.OnHealth == nil {
		deps.OnHealth = func(bool, string) {}
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Storage{cfg: cfg, deps: deps, log: deps.Logger.With("unit", deps.Unit), stop: stop, closed: make(chan struct{}),
		replicas: map[dsn.DSN]*replica{}}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.follow(ctx, deps.Topology) }()
	go func() { defer s.wg.Done(); s.measure(ctx) }()
	return s, nil
}

// Close stops following the table and closes every pool.
func (s *Storage) Close() error {
	s.stop()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if p := s.primary; p != nil {
		errs = append(errs, s.dropPrimary(p, 0))
	}
	for dsn, r := range s.replicas {
		errs = append(errs, r.store.Close())
		delete(s.replicas, dsn)
	}
	return errors.Join(errs...)
}

// Primary implements tradeunit.Storage.
func (s *Storage) Primary() (tradeunit.Store, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.primary
	switch {
	case p == nil:
		return nil, s.unavailable("has no primary in the routing table (failing over)")
	case p.store == nil:
		return nil, s.unavailable(fmt.Sprintf("cannot open its primary: %v", p.openErr))
	case !p.writable:
		return nil, s.unavailable("cannot take changes: primary " + p.why)
	}
	return p.store, nil
}

func (s *Storage) unavailable(why string) error {
	return &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.Primary",
		Message: fmt.Sprintf("unit %d %s; retry later", s.deps.Unit, why)}
}

// Readers implements tradeunit.Storage.
func (s *Storage) Readers(c tradeunit.Consistency) ([]tradeunit.Reader, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := time.Now()
	var out []tradeunit.Reader
	if c == tradeunit.Eventual {
		if r, staleness, ok := s.freshReplica(now); ok {
			out = append(out, tradeunit.Reader{Store: r.store, Info: tradeunit.ReadInfo{Source: tradeunit.FromReplica, Staleness: staleness}})
		}
	}
	p := s.primary
	if p != nil && p.store != nil && (p.reachable || !p.checked) {
		out = append(out, tradeunit.Reader{Store: p.reader})
	}
	if r, staleness, ok := s.freshestReplica(now); ok {
		// The primary cannot serve, or may fail: the freshest replica,
		// whatever its lag, in degraded mode.
		out = append(out, tradeunit.Reader{Store: r.store, Info: tradeunit.ReadInfo{
			Source: tradeunit.FromReplica, Degraded: true, Staleness: staleness}})
	}
	if len(out) == 0 {
		return nil, &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.Readers",
			Message: fmt.Sprintf("unit %d has neither a primary nor a replica to read; retry later", s.deps.Unit)}
	}
	return out, nil
}

// staleness bounds how old r's data may be at now: its measured lag plus
// the time since the measurement started (it may have stopped applying
// right after).
func (r *replica) staleness(now time.Time) time.Duration { return r.lag + now.Sub(r.measuredAt) }

// freshReplica picks at random a replica whose staleness is under MaxLag,
// spreading eventual reads over the fresh replicas.
func (s *Storage) freshReplica(now time.Time) (*replica, time.Duration, bool) {
	var fresh []*replica
	for _, r := range s.replicas {
		if r.reachable && r.known && r.staleness(now) < s.cfg.MaxLag {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return nil, 0, false
	}
	r := fresh[rand.IntN(len(fresh))]
	return r, r.staleness(now), true
}

// freshestReplica picks the reachable replica with the least staleness
// (one whose lag is unknown only if no other is known).
func (s *Storage) freshestReplica(now time.Time) (*replica, time.Duration, bool) {
	var best *replica
	for _, r := range s.replicas {
		switch {
		case !r.reachable:
		case best == nil, r.known && !best.known, r.known && r.staleness(now) < best.staleness(now):
			best = r
		}
	}
	if best == nil {
		return nil, 0, false
	}
	if !best.known {
		return best, 0, true
	}
	return best, best.staleness(now), true
}

// DeleteProbeOrders deletes the health checker's old probe orders on the
// unit's primary of the moment (see tradeunit.Store).
func (s *Storage) DeleteProbeOrders(ctx context.Context, createdBefore time.Time, limit int) (int, error) {
	store, err := s.Primary()
	if err != nil {
		return 0, err
	}
	return store.DeleteProbeOrders(ctx, createdBefore, limit)
}

// mysqlDSN returns the go-sql-driver DSN of d, with its password, or ""
// for SQLite. It is kept in memory only: never logged.
func (s *Storage) mysqlDSN(d dsn.DSN) (string, error) {
	if d.Scheme != dsn.MySQL {
		return "", nil
	}
	cfg, err := d.MySQLConfig(s.deps.Passwords)
	if err != nil {
		return "", err
	}
	return cfg.FormatDSN(), nil
}
