package replication

import (
	"context"
	"fmt"
	"time"
)

// WaitFor waits until a replica has applied position pos (its
// gtid_slave_pos reaches pos in every domain of pos), with ctx bounding the
// wait. It fails at once when the replica's applier is stopped, since the
// wait could never end.
func WaitFor(ctx context.Context, dsn string, pos GTIDList) error {
	s, err := dial(ctx, dsn)
	if err != nil {
		return fmt.Errorf("wait for %s: %w", pos, err)
	}
	defer s.Close()
	return s.waitFor(ctx, pos)
}

// waitPoll is how long one MASTER_GTID_WAIT call may wait before the
// applier's health and ctx are checked again.
const waitPoll = 500 * time.Millisecond

func (s *session) waitFor(ctx context.Context, pos GTIDList) error {
	if len(pos) == 0 {
		return nil
	}
	for {
		r, err := s.replicaStatus(ctx)
		if err != nil {
			return err
		}
		if r == nil {
			return fmt.Errorf("%s: wait for %s: %w", s.addr, pos, ErrNotReplica)
		}
		if r.LastSQLErrno != 0 {
			return fmt.Errorf("%s: wait for %s: applier stopped on error %d: %s", s.addr, pos, r.LastSQLErrno, r.LastSQLError)
		}
		if !r.SQLRunning && !r.AppliedPos.Includes(pos) {
			return fmt.Errorf("%s: wait for %s: applier is stopped at %s", s.addr, pos, r.AppliedPos)
		}
		wait := waitPoll
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			wait = max(time.Until(d), time.Millisecond)
		}
		var res int
		q := "SELECT MASTER_GTID_WAIT(?, ?)"
		if err := s.conn.QueryRowContext(ctx, q, pos.String(), wait.Seconds()).Scan(&res); err != nil {
			return fmt.Errorf("%s: wait for %s: %w", s.addr, pos, err)
		}
		if res == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: wait for %s: %w", s.addr, pos, err)
		}
	}
}

// WaitApplied waits until a replica has applied every transaction it has
// received (gtid_slave_pos reaches Gtid_IO_Pos), with ctx bounding the
// wait: the step of a failover between fencing the old primary and
// promoting. It returns ErrNotReplica for a server with no source.
func WaitApplied(ctx context.Context, dsn string) error {
	s, err := dial(ctx, dsn)
	if err != nil {
		return fmt.Errorf("wait applied: %w", err)
	}
	defer s.Close()
	return s.waitApplied(ctx)
}

func (s *session) waitApplied(ctx context.Context) error {
	r, err := s.replicaStatus(ctx)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%s: %w", s.addr, ErrNotReplica)
	}
	return s.waitFor(ctx, r.ReceivedPos)
}

// Promote makes a replica the primary: it stops receiving, waits until
// everything received is applied (RESET SLAVE ALL would discard the relay
// log, and with it transactions that were acknowledged to clients), forgets
// its source, turns the semi-sync primary side on, and makes the server
// writable. Commits then wait until a replica connects and acknowledges:
// re-point the other replicas promptly. It is idempotent; on a server that
// is not a replica it only does the last two steps.
func Promote(ctx context.Context, dsn string) error {
	s, err := dial(ctx, dsn)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	defer s.Close()
	r, err := s.replicaStatus(ctx)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if r != nil {
		if err := s.exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
			return fmt.Errorf("promote: %w", err)
		}
		if err := s.waitApplied(ctx); err != nil {
			// Not promoted: let it receive again, as it did before.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			s.exec(rctx, "START SLAVE IO_THREAD")
			cancel()
			return fmt.Errorf("promote: %w", err)
		}
		if err := s.exec(ctx, "STOP SLAVE", "RESET SLAVE ALL"); err != nil {
			return fmt.Errorf("promote: %w", err)
		}
	}
	if err := s.exec(ctx, "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = OFF"); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	return nil
}

// Source is the primary a replica replicates from, and the replication
// user it connects as.
type Source struct {
	Host     string
	Port     int
	User     string
	Password string
	// ConnectRetry is how long the receiver waits between attempts to
	// reach the source (default 1s; MariaDB's own is 60s, a long outage
	// after a failover).
	ConnectRetry time.Duration
	// Heartbeat is how often an idle source sends a heartbeat event
	// (default 1s), so that a replica notices a dead link within
	// slave_net_timeout instead of waiting for the next transaction.
	Heartbeat time.Duration
}

// Repoint makes a server replicate from src by GTID (MASTER_USE_GTID =
// slave_pos, from what it has applied): read-only, the semi-sync primary
// side off (with it on, a replica's own applier waits for
// acknowledgements no one sends: seen with MariaDB 10.11), the replica
// side on so that it acknowledges, and the replication threads started.
// It does not wait for the replica to connect; Inspect tells.
//
// CHANGE MASTER discards the relay log: transactions received but not
// applied are fetched again from src, which is right when src is the
// replica MostAdvanced chose.
func Repoint(ctx context.Context, replicaDSN string, src Source) error {
	s, err := dial(ctx, replicaDSN)
	if err != nil {
		return fmt.Errorf("repoint: %w", err)
	}
	defer s.Close()
	return s.repoint(ctx, src)
}

func (s *session) repoint(ctx context.Context, src Source) error {
	if src.ConnectRetry <= 0 {
		src.ConnectRetry = time.Second
	}
	if src.Heartbeat <= 0 {
		src.Heartbeat = time.Second
	}
	if err := s.exec(ctx, "SET SESSION lock_wait_timeout = 5", "SET GLOBAL read_only = ON"); err != nil {
		return fmt.Errorf("repoint: %w", err)
	}
	r, err := s.replicaStatus(ctx)
	if err != nil {
		return fmt.Errorf("repoint: %w", err)
	}
	if r != nil {
		if err := s.exec(ctx, "STOP SLAVE"); err != nil {
			return fmt.Errorf("repoint: %w", err)
		}
	}
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %d, MASTER_USER = %s, MASTER_PASSWORD = %s, "+
		"MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = %d, MASTER_HEARTBEAT_PERIOD = %.3f",
		quote(src.Host), src.Port, quote(src.User), quote(src.Password),
		max(1, int(src.ConnectRetry.Round(time.Second)/time.Second)), src.Heartbeat.Seconds())
	if err := s.exec(ctx, "SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL rpl_semi_sync_slave_enabled = ON"); err != nil {
		return fmt.Errorf("repoint: %w", err)
	}
	// Not through exec: its errors quote the statement, password included.
	if _, err := s.conn.ExecContext(ctx, change); err != nil {
		return fmt.Errorf("repoint: %s: CHANGE MASTER TO %s:%d: %w", s.addr, src.Host, src.Port, err)
	}
	if err := s.exec(ctx, "START SLAVE"); err != nil {
		return fmt.Errorf("repoint to %s:%d: %w", src.Host, src.Port, err)
	}
	return nil
}
