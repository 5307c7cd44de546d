// Package replicated gives a unit's logic service, or a directory shard's
// service, its storage as the storage topology describes it: one primary and
// its replicas. Storage is that machinery over any store; Unit adapts it to
// tradeunit.Storage (sqlstore), Shard to tradeunit.DirectoryStore (dirstore).
//
//   - It follows the topology (each Topology the caller sends). When the primary changes (a failover),
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
//   - If replicas are read, it runs the heartbeat writer on a writable
//     primary (replication.StartHeartbeat) and measures every replica's lag
//     from it (replication.HeartbeatAge), for eventual reads: a replica is
//     used while its lag, plus the time since it was measured, is under
//     MaxLag.
//   - When the primary cannot be read, real-time reads are served by the
//     freshest replica, marked degraded. A read of the primary counts only
//     if the primary was still writable after it (see confirmed): a fenced
//     one may have been replaced already.
//
// A SQLite primary (development) has no replicas and is always writable; a
// MySQL primary without replicas in the topology, whenever it is not
// read-only.
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
	// Every service replica runs one; they write the same row.
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

// Topology is a unit's (or shard's) storage as its topology names it now.
type Topology struct {
	Revision int64   // of the topology, for logs
	Primary  dsn.DSN // the zero DSN while a failover is under way
	Replicas []dsn.DSN
	// Cold says the primary is the unit's cold copy (package lifecycle):
	// a switch to it keeps the old, frozen primary serving reads until the
	// copy is open.
	Cold bool
}

// Deps are what a Storage works with.
type Deps struct {
	// Name is what the storage is of, in logs and errors: "unit 3",
	// "directory shard 2" (OpenUnit and OpenShard set it).
	Name string
	// Topology delivers the storage, at once and at every change, until it
	// is closed.
	Topology <-chan Topology
	// Passwords resolves the passwords of the application user (secrets).
	Passwords dsn.Passwords
	// OnHealth is called when whether the storage can take changes
	// changes, with the reason when it cannot. It must not block; nil for
	// none.
	OnHealth func(serving bool, why string)
	Logger   *slog.Logger
}

// Store is one server's store, as a Storage holds it.
type Store interface {
	Close() error
	// ReadOnly reports whether the server refuses changes (fenced).
	ReadOnly(ctx context.Context) (bool, error)
}

// Opener opens the stores of one kind.
type Opener[S Store] struct {
	// Primary opens a primary's store for changes, and checks that it
	// holds what it should (a unit's database is bound to its number).
	Primary func(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (S, error)
	// Replica opens a replica's store read-only; nil when replicas are not
	// read (they are then only failover candidates).
	Replica func(ctx context.Context, d dsn.DSN, passwords dsn.Passwords) (S, error)
}

// Storage is a replicated storage following its topology: the primary of
// the moment and the replicas it reads.
type Storage[S Store] struct {
	cfg    Config
	deps   Deps
	open   Opener[S]
	log    *slog.Logger
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed chan struct{}

	mu sync.RWMutex
	// applied: the first topology was applied; until then primary is nil
	// because none was read yet, not because the topology names none.
	applied bool
	primary *primary[S] // nil: none in the table
	// pending is the cold copy being opened while the old primary still
	// serves (see apply); nil when no such switch is under way.
	pending *primary[S]
	cold    bool // the topology says the primary is the unit's cold copy
	// hasReplicas: the topology lists replicas, so the primary must get
	// their semi-sync acknowledgement; a primary without replicas (one
	// database, a cold copy) only needs to be writable.
	hasReplicas bool
	replicas    map[dsn.DSN]*replica[S]
	serving     bool // last reported to OnHealth
	reported    bool
	lastWhy     string
}

// primary is the primary of the moment.
type primary[S Store] struct {
	dsn   dsn.DSN
	mysql string // go-sql-driver DSN, with the password; "" for SQLite
	// ctx ends when the primary is dropped: it bounds its opening and its
	// heartbeat writer.
	ctx    context.Context
	cancel context.CancelFunc

	// Under Storage.mu:
	store     S
	opened    bool  // store is set
	openErr   error // why it is not open yet
	checked   bool  // inspected at least once since open
	writable  bool
	why       string // why it is not writable
	reachable bool
	heartbeat *replication.Heartbeat
	// heartbeatStarting is set while startHeartbeat runs.
	heartbeatStarting bool
}

// replica is one replica, with its last measured lag.
type replica[S Store] struct {
	dsn   dsn.DSN
	mysql string // go-sql-driver DSN, with the password
	store S

	// Under Storage.mu:
	lag        time.Duration // heartbeat age when measured
	measuredAt time.Time     // when the measurement started
	known      bool          // lag was measured (and a heartbeat found)
	reachable  bool
}

// Open starts following deps.Topology, opening its servers with open. It
// returns at once: the primary opens in the background (until then, and
// whenever the topology names none, changes fail with UNIT_UNAVAILABLE).
// Close releases it.
func Open[S Store](cfg Config, deps Deps, open Opener[S]) (*Storage[S], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Name == "" || deps.Topology == nil || deps.Logger == nil || open.Primary == nil {
		return nil, errors.New("replicated storage: Name, Topology, Logger and an opener of primaries are required")
	}
	if deps.OnHealth == nil {
		deps.OnHealth = func(bool, string) {}
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Storage[S]{cfg: cfg, deps: deps, open: open, log: deps.Logger.With("storage", deps.Name), stop: stop, closed: make(chan struct{}),
		replicas: map[dsn.DSN]*replica[S]{}}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.follow(ctx, deps.Topology) }()
	go func() { defer s.wg.Done(); s.measure(ctx) }()
	return s, nil
}

// Close stops following the table and closes every pool.
func (s *Storage[S]) Close() error {
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

// Cold reports whether the topology says the primary is the unit's cold
// copy.
func (s *Storage[S]) Cold() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cold
}

// Writer returns the primary's store while it can take changes; otherwise
// UNIT_UNAVAILABLE, a definite answer: nothing was written.
func (s *Storage[S]) Writer() (S, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var none S
	p := s.primary
	switch {
	case p == nil:
		return none, s.unavailable("has no primary in the storage topology (failing over)")
	case !p.opened:
		return none, s.unavailable(fmt.Sprintf("cannot open its primary: %v", p.openErr))
	case !p.writable:
		return none, s.unavailable("cannot take changes: primary " + p.why)
	}
	return p.store, nil
}

func (s *Storage[S]) unavailable(why string) error {
	return &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.Writer",
		Message: fmt.Sprintf("%s %s; retry later", s.deps.Name, why)}
}

// Read is a store a read may use, and what its result is.
type Read[S Store] struct {
	Store S
	Info  tradeunit.ReadInfo
	// Confirm: the store is a MariaDB primary's, whose result counts only
	// if the server is still writable after the read (see confirm).
	Confirm bool
}

// Readers returns the stores a read of consistency c tries, in order: for
// an eventual read a replica under the lag bound; the primary while it is
// reachable; then the freshest replica, whatever its lag, as a degraded
// read. Errors: UNIT_UNAVAILABLE when there is none.
func (s *Storage[S]) Readers(c tradeunit.Consistency) ([]Read[S], error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := time.Now()
	var out []Read[S]
	if c == tradeunit.Eventual {
		if r, staleness, ok := s.freshReplica(now); ok {
			out = append(out, Read[S]{Store: r.store, Info: tradeunit.ReadInfo{Source: tradeunit.FromReplica, Staleness: staleness}})
		}
	}
	p := s.primary
	if p != nil && p.opened && (p.reachable || !p.checked) {
		out = append(out, Read[S]{Store: p.store, Confirm: p.mysql != ""})
	}
	if r, staleness, ok := s.freshestReplica(now); ok {
		// The primary cannot serve, or may fail: the freshest replica,
		// whatever its lag, in degraded mode.
		out = append(out, Read[S]{Store: r.store, Info: tradeunit.ReadInfo{
			Source: tradeunit.FromReplica, Degraded: true, Staleness: staleness}})
	}
	if len(out) == 0 {
		return nil, &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Op: "replicated.Readers",
			Message: fmt.Sprintf("%s has neither a primary nor a replica to read; retry later", s.deps.Name)}
	}
	return out, nil
}

// staleness bounds how old r's data may be at now: its measured lag plus
// the time since the measurement started (it may have stopped applying
// right after).
func (r *replica[S]) staleness(now time.Time) time.Duration { return r.lag + now.Sub(r.measuredAt) }

// freshReplica picks at random a replica whose staleness is under MaxLag,
// spreading eventual reads over the fresh replicas.
func (s *Storage[S]) freshReplica(now time.Time) (*replica[S], time.Duration, bool) {
	var fresh []*replica[S]
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
func (s *Storage[S]) freshestReplica(now time.Time) (*replica[S], time.Duration, bool) {
	var best *replica[S]
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

// mysqlDSN returns the go-sql-driver DSN of d, with its password, or ""
// for SQLite. It is kept in memory only: never logged.
func (s *Storage[S]) mysqlDSN(d dsn.DSN) (string, error) {
	if d.Scheme != dsn.MySQL {
		return "", nil
	}
	cfg, err := d.MySQLConfig(s.deps.Passwords)
	if err != nil {
		return "", err
	}
	return cfg.FormatDSN(), nil
}
