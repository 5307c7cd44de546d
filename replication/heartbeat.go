package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// HeartbeatDB is the database of the heartbeat table. Its name matches the
// application user's `tradeunit\_%` grant, so either root or that user can
// run the writer.
const HeartbeatDB = "tradeunit_heartbeat"

const (
	heartbeatTable  = HeartbeatDB + ".heartbeat"
	heartbeatCreate = "CREATE TABLE IF NOT EXISTS " + heartbeatTable +
		" (server_id INT UNSIGNED NOT NULL PRIMARY KEY, ts_us BIGINT NOT NULL) ENGINE=InnoDB"
	// heartbeatWrite stamps the primary's clock, in microseconds since the
	// epoch, in the row of its server_id (a new primary writes its own row;
	// readers take the newest). The read_only guard makes the writer
	// harmless on a fenced server even as root, whom read_only does not
	// stop: a heartbeat committed there would be an errant transaction.
	// SET GLOBAL read_only waits for commits in flight, so the guard
	// cannot be passed by a write that commits after the fence.
	heartbeatWrite = "REPLACE INTO " + heartbeatTable +
		" SELECT @@server_id, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED) FROM DUAL WHERE @@global.read_only = 0"
	// heartbeatAge is read on a replica with the replica's clock.
	heartbeatAge = "SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED) - MAX(ts_us) FROM " + heartbeatTable
)

// Heartbeat writes a timestamp on a primary at a fixed interval, so that a
// replica can tell how old its data is even when there is nothing else to
// replicate (see Lag). Each write is a replicated transaction and, on a
// semi-sync primary, waits for its acknowledgement: with no acknowledging
// replica the writer blocks with the commits, and replicas see their lag
// grow, which is the truth.
type Heartbeat struct {
	db     *sql.DB
	every  time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	last time.Time // last write that stamped a row
	err  error     // last write's error
}

// StartHeartbeat creates the heartbeat table on the primary of dsn if
// needed (the server must then be writable), writes once, and keeps writing
// every interval until ctx ends or Stop. One write is in flight at a time:
// a write blocked on semi-sync is not abandoned for a new one (each would
// leave a server thread waiting). Use the DSN of a user without SUPER if
// possible, so that fencing stops the writer by privilege too.
func StartHeartbeat(ctx context.Context, dsn string, every time.Duration) (*Heartbeat, error) {
	if every <= 0 {
		return nil, errors.New("heartbeat: interval must be positive")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: parse DSN: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultDialTimeout
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	if err := createHeartbeat(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("heartbeat on %s: %w", cfg.Addr, err)
	}
	h := &Heartbeat{db: db, every: every, done: make(chan struct{})}
	if err := h.write(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("heartbeat on %s: %w", cfg.Addr, err)
	}
	ctx, h.cancel = context.WithCancel(ctx)
	go h.run(ctx)
	return h, nil
}

func createHeartbeat(ctx context.Context, db *sql.DB) error {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+heartbeatTable).Scan(&n)
	if err == nil {
		return nil
	}
	if !isMySQLError(err, errNoSuchTable) && !isMySQLError(err, errBadDB) {
		return err
	}
	var ro bool
	if err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return err
	}
	if ro {
		return errors.New("no heartbeat table and the server is read-only: start the writer on the primary")
	}
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + HeartbeatDB, heartbeatCreate} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (h *Heartbeat) run(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.write(ctx)
		}
	}
}

func (h *Heartbeat) write(ctx context.Context) error {
	res, err := h.db.ExecContext(ctx, heartbeatWrite)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	if err == nil && n > 0 {
		h.last = time.Now()
	}
	return err
}

// Last returns when the writer last stamped a row, and the last write's
// error. A stale time with no error means the server is read-only.
func (h *Heartbeat) Last() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, h.err
}

// Stop stops the writer and waits for it. A write blocked on semi-sync is
// abandoned: its connection is closed, and the server commits it when an
// acknowledgement comes.
func (h *Heartbeat) Stop() {
	h.cancel()
	<-h.done
	h.db.Close()
}

// ReplicaLag is how far behind its primary a replica is, measured three
// ways.
type ReplicaLag struct {
	// Heartbeat is the age of the newest heartbeat the replica has applied,
	// by the replica's clock: the replica's data reflects the primary as it
	// was at least this long ago, whether the primary is busy or idle. It
	// overstates by up to the writer's interval, and clock skew between the
	// two hosts adds to it (or takes from it). HasHeartbeat is false when
	// no heartbeat has reached the replica.
	Heartbeat    time.Duration
	HasHeartbeat bool
	// SecondsBehindMaster is MariaDB's figure (nil when NULL). It is 0
	// while the replica idles and while a cut link goes unnoticed, so it
	// cannot bound staleness; it is here to compare.
	SecondsBehindMaster *int
	// Backlog is the number of transactions received but not applied in
	// the domain (the sequence-number gap). It says nothing of what has not
	// been received.
	Backlog uint64
}

// Lag measures a replica's lag for bounded-staleness reads: a reader that
// accepts data at most D old uses the replica while Heartbeat < D, which
// needs a Heartbeat writer on the primary. domain is the GTID domain for
// Backlog (0 in tradeunit).
func Lag(ctx context.Context, replicaDSN string, domain uint32) (ReplicaLag, error) {
	s, err := dial(ctx, replicaDSN)
	if err != nil {
		return ReplicaLag{}, fmt.Errorf("lag: %w", err)
	}
	defer s.Close()
	var lag ReplicaLag
	var age sql.NullInt64
	err = s.conn.QueryRowContext(ctx, heartbeatAge).Scan(&age)
	switch {
	case err == nil:
		lag.HasHeartbeat = age.Valid
		lag.Heartbeat = time.Duration(max(age.Int64, 0)) * time.Microsecond
	case isMySQLError(err, errNoSuchTable), isMySQLError(err, errBadDB):
	default:
		return lag, fmt.Errorf("lag: %s: %w", s.addr, err)
	}
	r, err := s.replicaStatus(ctx)
	if err != nil {
		return lag, fmt.Errorf("lag: %w", err)
	}
	if r == nil {
		return lag, fmt.Errorf("lag: %s: %w", s.addr, ErrNotReplica)
	}
	lag.SecondsBehindMaster = r.SecondsBehindMaster
	a, _ := r.AppliedPos.Seq(domain)
	if recv, _ := r.ReceivedPos.Seq(domain); recv > a {
		lag.Backlog = recv - a
	}
	return lag, nil
}
