// Package replicated gives a unit's logic service its storage as the
// routing table describes it: one primary and its replicas
// (routing.Unit.Storage). It implements tradeunit.Storage:
//
//   - It follows the table. When the unit's primary changes (a failover),
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
	"strings"
	"sync"
	"time"

	"tradeunit"
	"tradeunit/replication"
	"tradeunit/routing"
)

// Config configures a Storage. Zero durations take their defaults.
type Config struct {
	Unit   tradeunit.UnitID
	Routes routing.Source
	// MaxLag bounds the staleness of eventual reads (default 1s): a
	// replica further behind is not used.
	MaxLag time.Duration
	// CheckEvery is how often the primary is inspected (default 500ms).
	CheckEvery time.Duration
	// LagEvery is how often each replica's lag is measured (default
	// 200ms); with MaxLag it decides how quickly a lagging replica is
	// dropped.
	LagEvery time.Duration
	// MaxAckWait is how long a commit may wait for a semi-sync
	// acknowledgement before the primary is taken as unable to get one
	// (default 1s).
	MaxAckWait time.Duration
	// Heartbeat is the interval of the heartbeat writer on the primary
	// (default 100ms). Every logic-service replica of the unit runs one;
	// they write the same row.
	Heartbeat time.Duration
	// Grace is how long the pool of a replaced primary stays open for the
	// calls in flight on it (default 5s).
	Grace time.Duration
	// OnHealth is called when whether the unit can take changes changes,
	// with the reason when it cannot. It must not block.
	OnHealth func(serving bool, why string)
	Logger   *slog.Logger
}

func (c *Config) setDefaults() error {
	if err := c.Unit.Validate(); err != nil {
		return err
	}
	if c.Routes == nil {
		return errors.New("replicated storage: no routing table")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxLag, time.Second)
	def(&c.CheckEvery, 500*time.Millisecond)
	def(&c.LagEvery, 200*time.Millisecond)
	def(&c.MaxAckWait, time.Second)
	def(&c.Heartbeat, 100*time.Millisecond)
	def(&c.Grace, 5*time.Second)
	if c.OnHealth == nil {
		c.OnHealth = func(bool, string) {}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Storage is a unit's replicated storage, following the routing table.
type Storage struct {
	cfg    Config
	log    *slog.Logger
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed chan struct{}

	mu       sync.RWMutex
	primary  *primary            // nil: none in the table
	replicas map[string]*replica // by storage DSN
	serving  bool                // last reported to OnHealth
	reported bool
	lastWhy  string
}

var _ tradeunit.Storage = (*Storage)(nil)

// primary is the unit's primary of the moment.
type primary struct {
	dsn   string // storage DSN, as in the table
	mysql string // go-sql-driver DSN; "" for SQLite
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
	dsn   string
	mysql string
	store tradeunit.Store

	// Under Storage.mu:
	lag        time.Duration // heartbeat age when measured
	measuredAt time.Time     // when the measurement started
	known      bool          // lag was measured (and a heartbeat found)
	reachable  bool
}

// Open starts following the unit's entry of cfg.Routes. It returns at once:
// the primary opens in the background (until then, and whenever the unit
// has none, changes fail with UNIT_UNAVAILABLE). Close releases it.
func Open(cfg Config) (*Storage, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Storage{cfg: cfg, log: cfg.Logger.With("unit", cfg.Unit), stop: stop, closed: make(chan struct{}),
		replicas: map[string]*replica{}}
	tables := cfg.Routes.Watch(ctx)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.follow(ctx, tables) }()
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
		Message: fmt.Sprintf("unit %d %s; retry later", s.cfg.Unit, why)}
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
			Message: fmt.Sprintf("unit %d has neither a primary nor a replica to read; retry later", s.cfg.Unit)}
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

// mysqlDSN returns the go-sql-driver DSN of a storage DSN, "" for SQLite.
func mysqlDSN(dsn string) (string, error) {
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch scheme {
	case "mysql":
		return rest, nil
	case "sqlite":
		return "", nil
	}
	return "", fmt.Errorf("storage DSN %q: unknown scheme %q", dsn, scheme)
}
