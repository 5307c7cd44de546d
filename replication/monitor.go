package replication

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The functions of this file are for a unit's logic service, which knows
// its storage only through the DSNs of the application user: no SUPER, no
// SLAVE MONITOR (so no SHOW SLAVE STATUS), only SELECT on its own
// databases. They read what such a user may read.

// InspectPrimary reads what the health check of a primary needs, as any
// user: the server id, @@read_only, the GTID positions and the semi-sync
// state (variables, SHOW GLOBAL STATUS, and the longest semi-sync wait
// among the connections the user can see, which for the application user
// are all of the application's commits). Unlike Inspect it does not read
// SHOW SLAVE STATUS: Status.Replica is nil, so Status.Role cannot tell a
// replica from a fenced server (both are read-only, and a read-only server
// is not a primary the application can use). An unreachable server is an
// error wrapping ErrUnreachable.
func InspectPrimary(ctx context.Context, dsn string) (Status, error) {
	s, err := dial(ctx, dsn)
	if err != nil {
		return Status{}, err
	}
	defer s.Close()
	return s.primaryStatus(ctx)
}

// Writable reports whether a primary can take application writes with the
// guarantee of semi-sync: it is not read-only, a replica is connected to
// acknowledge (Acknowledged), and no commit has waited for an
// acknowledgement longer than maxWait (0: no bound), which catches
// replicas that are connected but hung. why says what is wrong.
func (s Status) Writable(maxWait time.Duration) (ok bool, why string) {
	switch sem := s.SemiSync; {
	case s.ReadOnly:
		return false, "read-only (fenced, or not promoted)"
	case !sem.MasterEnabled:
		return false, "semi-sync is not enabled: commits would not wait for a replica"
	case !sem.MasterOn:
		return false, "semi-sync fell back to asynchronous: commits are not on a replica"
	case sem.Clients == 0:
		return false, "no replica acknowledges: commits wait"
	case maxWait > 0 && sem.LongestWait > maxWait:
		return false, fmt.Sprintf("a commit has waited %v for an acknowledgement", sem.LongestWait.Round(time.Millisecond))
	}
	return true, ""
}

// WritableAlone reports whether a server that has no replicas (none in
// the storage topology: a unit on one database) can take application
// writes: it is not read-only. There is no replica to wait for, so
// semi-sync is not asked for.
func (s Status) WritableAlone() (ok bool, why string) {
	if s.ReadOnly {
		return false, "read-only (fenced, or not promoted)"
	}
	return true, ""
}

// HeartbeatAge is the part of Lag that needs no replication privilege: the
// age of the newest heartbeat the server of dsn has applied, by its own
// clock (see ReplicaLag.Heartbeat). ok is false when no heartbeat has
// reached it. Reading it on the primary itself gives the writer's own
// delay. An unreachable server is an error wrapping ErrUnreachable.
func HeartbeatAge(ctx context.Context, dsn string) (age time.Duration, ok bool, err error) {
	s, err := dial(ctx, dsn)
	if err != nil {
		return 0, false, fmt.Errorf("heartbeat age: %w", err)
	}
	defer s.Close()
	var us sql.NullInt64
	err = s.conn.QueryRowContext(ctx, heartbeatAge).Scan(&us)
	switch {
	case err == nil:
		return time.Duration(max(us.Int64, 0)) * time.Microsecond, us.Valid, nil
	case isMySQLError(err, errNoSuchTable), isMySQLError(err, errBadDB):
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("heartbeat age: %s: %w", s.addr, err)
}

// StopReceiving stops a replica's receiver (STOP SLAVE IO_THREAD): it no
// longer fetches from its source, nor acknowledges it; its applier goes on
// with what it has received. A failover does it to every replica when the
// old primary could not be fenced: a primary that is unreachable to the
// operator but alive can then get no acknowledgement, so no commit it
// makes from then on is ever acknowledged to a client. It is idempotent;
// on a server that is not a replica it returns ErrNotReplica.
func StopReceiving(ctx context.Context, dsn string) error {
	s, err := dial(ctx, dsn)
	if err != nil {
		return fmt.Errorf("stop receiving: %w", err)
	}
	defer s.Close()
	r, err := s.replicaStatus(ctx)
	if err != nil {
		return fmt.Errorf("stop receiving: %w", err)
	}
	if r == nil {
		return fmt.Errorf("stop receiving: %s: %w", s.addr, ErrNotReplica)
	}
	if err := s.exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
		return fmt.Errorf("stop receiving: %w", err)
	}
	return nil
}
