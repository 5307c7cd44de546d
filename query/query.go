// Package query is the query store: a non-real-time copy of every unit's
// orders and refunds, fed by the units' order events (tradeunit.OrderEvent),
// that serves what no single unit can answer: a merchant's order listing
// across units, daily statistics, the daily trade bill, and operators'
// reconciliation (tradeunit.TotalsReader).
//
// It is a projection: Apply is idempotent and order-insensitive per order
// (an event older than the stored version changes nothing), so a consumer
// may replay the bus, deliver out of order, or Reset and rebuild from
// scratch, and end with the same rows. What it serves is complete only up to
// AsOf; every HTTP answer says so (as_of, lag_ms).
//
// Two storages share every query: SQLite (modernc.org/sqlite, embedded, for
// development) and PostgreSQL (jackc/pgx through database/sql, production).
// Times are stored as Unix microseconds, the precision units keep.
package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"tradeunit"
)

// Config is the query store's configuration.
type Config struct {
	// Zone is the time zone merchants' days are in: a day's statistics and
	// its trade bill cover midnight to midnight there.
	Zone *time.Location
}

// ChinaStandardTime is UTC+08:00, the zone of WeChat Pay's bills. It is a
// fixed zone, so that a day is always 24 hours and no tz database is needed.
var ChinaStandardTime = time.FixedZone("CST", 8*60*60)

// DefaultConfig returns the configuration of a query store serving Chinese
// merchants: days in ChinaStandardTime.
func DefaultConfig() Config { return Config{Zone: ChinaStandardTime} }

// Validate reports what is wrong with c as a PARAM_ERROR, changing nothing.
func (c Config) Validate() error {
	if c.Zone == nil {
		return tradeunit.Errorf(tradeunit.CodeParamError, "query store config: Zone is not set (DefaultConfig has China Standard Time)")
	}
	return nil
}

// Store is the query store over one SQLite file or one PostgreSQL database.
// It is safe for concurrent use.
type Store struct {
	// write runs every transaction; on SQLite it has one connection (one
	// writer at a time), and read serves reads. On PostgreSQL both are
	// the same pool.
	write, read *sql.DB
	dialect     dialect
	cfg         Config
	// target names the storage in messages, without a password.
	target string
}

var _ tradeunit.TotalsReader = (*Store)(nil)

// Open opens the query store named by target, creating its schema if
// needed (migrations are idempotent and serialized across processes):
//
//	sqlite:PATH[?synchronous=FULL|NORMAL]        an embedded file (development)
//	postgres://USER@HOST:PORT/DB?sslmode=disable PostgreSQL (production)
//
// (postgresql:// is accepted too.) A PostgreSQL URL holds no password, for
// the reasons of package dsn: one comes from PGPASSWORD or a PGPASSFILE on
// the host that connects. Errors: PARAM_ERROR for a bad target or config;
// QUERY_STORE_UNAVAILABLE when the storage cannot be reached.
func Open(ctx context.Context, target string, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	s, err := openStorage(t)
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	if err := s.write.PingContext(ctx); err != nil {
		s.Close()
		return nil, s.fail("query.Open", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, s.fail("query.Open: migrate", err)
	}
	return s, nil
}

// Zone returns the zone merchants' days are in (Config.Zone).
func (s *Store) Zone() *time.Location { return s.cfg.Zone }

// String names the storage, without a password.
func (s *Store) String() string { return s.target }

// Ping checks that the storage answers. Errors: QUERY_STORE_UNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return s.fail("query.Ping", err)
	}
	return nil
}

// Close closes the storage's pools.
func (s *Store) Close() error {
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// readTx runs fn in a read-only transaction, so that the several queries
// of one answer see one snapshot.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, s.dialect.readTxOptions)
	if err != nil {
		return s.fail(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// writeTx runs fn in a transaction, again when the storage aborted it for
// contention (a deadlock or a serialization failure: fn is idempotent).
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.tryWriteTx(ctx, fn)
		if err == nil || !s.dialect.isContention(err) {
			break
		}
	}
	if err != nil {
		return s.fail(op, err)
	}
	return nil
}

func (s *Store) tryWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
