package replication

import (
	"context"
	"fmt"
	"strconv"
)

// Fence makes a server refuse application writes: it kills every client
// connection but its own and the replication ones, sets read_only=ON, and
// kills again the connections opened meanwhile. It is idempotent, and the
// first step of a failover: the old primary must stop writing before a
// replica is promoted (never two writable primaries).
//
// The kill comes first because SET GLOBAL read_only waits for commits in
// progress, and on a primary that lost its replicas a commit waits for a
// semi-sync acknowledgement that never comes: read_only would wait with
// it. A killed commit that was waiting is not rolled back: it is already
// in the binlog (AFTER_SYNC), so it becomes visible on this server alone,
// its client got an error, and it is an errant transaction should this
// server rejoin (see ErrantGTIDs). Connections of users with SUPER (root)
// are killed too, but read_only does not stop their new ones.
//
// An unreachable server is an error wrapping ErrUnreachable: the caller
// decides whether that is acceptable (it was killed) or not (it may still
// be writing, and must be cut off some other way).
func Fence(ctx context.Context, dsn string) error {
	s, err := dial(ctx, dsn)
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	defer s.Close()
	// A short lock wait, so that a commit that slips in between the kill
	// and read_only costs a retry, not a hang.
	if err := s.exec(ctx, "SET SESSION lock_wait_timeout = 1"); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	for {
		if err := s.killClients(ctx); err != nil {
			return fmt.Errorf("fence: %w", err)
		}
		err := s.exec(ctx, "SET GLOBAL read_only = ON")
		if err == nil {
			break
		}
		if !isMySQLError(err, errLockWaitTimeout) || ctx.Err() != nil {
			return fmt.Errorf("fence: %w", err)
		}
	}
	// Connections opened before read_only may hold open transactions; they
	// can no longer commit, but they hold locks until they are gone.
	if err := s.killClients(ctx); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	return nil
}

// killClients kills every client connection but the session's own, the
// binlog dump threads (replicas keep receiving what was committed) and
// the server's own threads.
func (s *session) killClients(ctx context.Context) error {
	rows, err := s.conn.QueryContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST
		WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler')
		AND COMMAND NOT IN ('Binlog Dump', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker')`)
	if err != nil {
		return fmt.Errorf("%s: list connections: %w", s.addr, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.exec(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err != nil && !isMySQLError(err, errNoSuchThread) {
			return err
		}
	}
	return nil
}
